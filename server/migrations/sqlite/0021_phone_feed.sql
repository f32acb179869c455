-- The paired phone's live list (`GET /device/api/events`): each instance
-- asks, a few times a second while a phone listens, which users' sessions
-- were decided and which phones were unpaired since it last looked
-- (wherever that happened); these indexes answer without a scan. What is
-- still waiting or paired (NULL) is not in them, nor any session of
-- another method: the other flows' decisions write no index entry (the
-- queries name the method as written here, so the planner can use it).
CREATE INDEX sca_sessions_decided ON sca_sessions(decided_at) WHERE decided_at IS NOT NULL AND method = 'paired-device';
CREATE INDEX paired_phones_ended ON paired_phones(ended_at) WHERE ended_at IS NOT NULL;
