-- Why a version did not build, as its own field (the interpreter's error and its line), so
-- readers need not scan the build log for it.
ALTER TABLE function_versions ADD COLUMN build_error TEXT;
