-- Web Push to the paired phone. The phone's PushSubscription is kept with
-- its pairing (`push_endpoint`, `push_p256dh`, `push_auth`, subscribed at
-- `push_since`); a push service's 404 or 410 clears it, and the account
-- area then shows the phone's notifications off.
--
-- A push row written while the phone has a subscription is `pending` for
-- the sender task, else `kept` (the sandbox's delivery, or a phone that
-- gets its approvals only while its app is open). A sender claims due
-- rows for a lease (`claim`, `claimed_until`) as for SMS, and marks each
-- `sent`, `failed`, or `gone` (the subscription was dead), or puts it
-- back for `next_attempt_at`.
ALTER TABLE paired_phones ADD COLUMN push_endpoint TEXT;
ALTER TABLE paired_phones ADD COLUMN push_p256dh TEXT;
ALTER TABLE paired_phones ADD COLUMN push_auth TEXT;
ALTER TABLE paired_phones ADD COLUMN push_since INTEGER;
ALTER TABLE push_outbox ADD COLUMN state TEXT NOT NULL DEFAULT 'kept' CHECK (state IN ('kept', 'pending', 'sent', 'failed', 'gone'));
ALTER TABLE push_outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE push_outbox ADD COLUMN next_attempt_at INTEGER;
ALTER TABLE push_outbox ADD COLUMN claim TEXT;
ALTER TABLE push_outbox ADD COLUMN claimed_until INTEGER;
ALTER TABLE push_outbox ADD COLUMN delivered_at INTEGER;
ALTER TABLE push_outbox ADD COLUMN last_error TEXT;
CREATE INDEX push_outbox_due ON push_outbox(next_attempt_at) WHERE state = 'pending';
