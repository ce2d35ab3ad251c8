-- Asynchronous commands (Prefer: respond-async): one row per accepted
-- command, written before it is published to the broker. A consumer applies
-- the command with the operation id as its Idempotency-Key, then records the
-- outcome here. An Idempotency-Key of the caller's own is kept per scope, as
-- for synchronous requests.
CREATE TABLE operations (
    operation_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         bigint REFERENCES users (user_id) ON DELETE SET NULL,
    role            text NOT NULL,
    method          text NOT NULL,
    route           text NOT NULL,   -- the route pattern
    path            text NOT NULL,
    request         text NOT NULL,   -- the body as received
    scope           text,
    idempotency_key text,
    request_hash    text,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    queued          boolean NOT NULL DEFAULT false, -- the broker confirmed the message
    http_status     integer,
    result          jsonb,
    error           jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE UNIQUE INDEX operations_idempotency ON operations (scope, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX operations_by_user ON operations (user_id, operation_id);

CREATE FUNCTION operation_json(o operations) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'operation_id', o.operation_id, 'status', o.status, 'result', o.result, 'error', o.error,
        'created_at', rfc3339(o.created_at), 'finished_at', rfc3339(o.finished_at))
$$;
