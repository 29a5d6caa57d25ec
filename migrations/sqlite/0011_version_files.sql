-- A version's files by relative path, as a JSON object; `code` keeps its entry file.
ALTER TABLE function_versions ADD COLUMN files TEXT;
