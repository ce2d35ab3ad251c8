-- Security hardening (issue 14).

-- Names compared the way people type them: case and accents aside.
-- Folds exactly as text_fold() in src/core/text.c, with no dependence on the
-- database's locale, so a value folded in C compares equal to a folded column.
CREATE FUNCTION fold_name(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT translate(s,
       'ABCDEFGHIJKLMNOPQRSTUVWXYZÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöøùúûüýÿ',
       'abcdefghijklmnopqrstuvwxyzaaaaaaceeeeiiiinoooooouuuuyaaaaaaceeeeiiiinoooooouuuuyy') $$;

-- Accounts transitd itself created: 'seed' (seed --demo) or 'admin-env'
-- (migrate with ADMIN_EMAIL). Provisioning changes only those; an account
-- someone registered (NULL) is never given a password or a role by it.
ALTER TABLE users ADD COLUMN provisioned_by text CHECK (provisioned_by IN ('seed', 'admin-env'));
-- Logins from before this moment end: set when the role or the password
-- changes. Refresh checks it; access tokens learn it through the revocation list.
ALTER TABLE users ADD COLUMN sessions_valid_after timestamptz;
