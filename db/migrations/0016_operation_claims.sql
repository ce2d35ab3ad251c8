-- A publisher that gets no confirm from the broker cannot tell whether the
-- command reached the queue: the broker may have taken it, handed it to a
-- consumer and gone down before confirming. The publisher used to mark the
-- operation failed (503) while such a consumer applied it, so a command
-- answered 503 could still take effect. Now a consumer claims the operation
-- before applying it, and the publisher marks only an unclaimed pending
-- operation failed; when it finds the operation claimed, the command was
-- delivered and the caller is told 202. One of the two row updates wins.
ALTER TABLE operations ADD COLUMN claimed_at timestamptz;
