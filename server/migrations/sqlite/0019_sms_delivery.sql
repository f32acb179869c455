-- Real SMS delivery through the outbox. A row written with what it
-- announces is `kept` (the sandbox's delivery, or a production without a
-- provider) or `pending`: then `sealed` holds the message as it is to be
-- sent, sealed under PASSGATE_SECRETS_KEY (the `body` column stays
-- redacted), and a sender task delivers it. A sender claims due rows for
-- a lease (`claim`, `claimed_until`), so that two instances never send
-- one at once and a crashed sender's rows are taken again when its lease
-- ends; it marks each `sent` or `failed` and forgets the sealed copy, or
-- puts it back for `next_attempt_at`.
ALTER TABLE sms_outbox ADD COLUMN state TEXT NOT NULL DEFAULT 'kept' CHECK (state IN ('kept', 'pending', 'sent', 'failed'));
ALTER TABLE sms_outbox ADD COLUMN sealed TEXT;
ALTER TABLE sms_outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sms_outbox ADD COLUMN next_attempt_at INTEGER;
ALTER TABLE sms_outbox ADD COLUMN claim TEXT;
ALTER TABLE sms_outbox ADD COLUMN claimed_until INTEGER;
ALTER TABLE sms_outbox ADD COLUMN delivered_at INTEGER;
ALTER TABLE sms_outbox ADD COLUMN provider_id TEXT;
ALTER TABLE sms_outbox ADD COLUMN last_error TEXT;
CREATE INDEX sms_outbox_due ON sms_outbox(next_attempt_at) WHERE state = 'pending';
