-- Security hardening (issue 14).

-- Names compared the way people type them: case and accents aside.
-- Folds exactly as text_fold() in src/core/text.c, with no dependence on the
-- database's locale, so a value folded in C compares equal to a folded column.
CREATE FUNCTION fold_name(s text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT translate(s,
       'ABCDEFGHIJKLMNOPQRSTUVWXYZÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöøùúûüýÿ',
       'abcdefghijklmnopqrstuvwxyzaaaaaaceeeeiiiinoooooouuuuyaaaaaaceeeeiiiinoooooouuuuyy') $$;
