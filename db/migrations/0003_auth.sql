-- Credentials and roles. Passwords are Argon2id strings from libsodium.
ALTER TABLE users
    ADD COLUMN password_hash text,   -- NULL: cannot log in (imported or scale users)
    ADD COLUMN role text NOT NULL DEFAULT 'rider' CHECK (role IN ('rider', 'operator', 'admin')),
    ADD COLUMN last_login_at timestamptz;

CREATE INDEX users_created_idx ON users (created_at DESC, user_id DESC);

CREATE FUNCTION user_json(u users) RETURNS json
LANGUAGE sql STABLE AS
$$ SELECT json_build_object(
       'user_id', u.user_id, 'email', u.email, 'first_name', u.first_name, 'last_name', u.last_name,
       'role', u.role, 'created_at', rfc3339(u.created_at)) $$;
