//! The checks of a function spec that need no database, in one place for the portal and the
//! server: its name, language, files, configuration, limits and pool settings.

use crate::env::validate_vars;
use crate::files::validate_tree;
use crate::model::*;

/// Everything about a function spec that does not need the database.
pub fn validate_spec(spec: &FunctionSpec, limits: &Limits, creating: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if creating {
        if let Err(e) = validate_name("name", &spec.name) {
            errors.push(FieldError::new("name", e));
        }
    }
    if Language::parse(&spec.language).is_none() {
        errors.push(FieldError::new(
            "language",
            format!("unknown language {:?}: use \"nodejs\" or \"python\"", spec.language),
        ));
    }
    match (&spec.files, Language::parse(&spec.language)) {
        (Some(_), _) if !spec.code.is_empty() => errors.push(FieldError::new(
            "code",
            "give the entry file either as code or inside files, not both",
        )),
        (Some(files), Some(language)) => errors.extend(validate_tree(language, files, limits.max_files_bytes)),
        (Some(_), None) => {}
        // An update that gives neither keeps the files it has.
        (None, _) if spec.code.trim().is_empty() && !creating => {}
        (None, _) if spec.code.trim().is_empty() => {
            errors.push(FieldError::new("code", "code is empty: write the function's handler"))
        }
        (None, _) if spec.code.len() > MAX_CODE_BYTES => errors.push(FieldError::new(
            "code",
            format!("code is {} bytes; the maximum is {MAX_CODE_BYTES}: put larger code in several files", spec.code.len()),
        )),
        (None, _) => {}
    }
    if let Some(env) = &spec.env {
        errors.extend(validate_vars("env", "variable", env.iter().map(|(name, value)| (name, Some(value)))));
    }
    if let Some(secrets) = &spec.secrets {
        errors.extend(validate_vars("secrets", "secret", secrets.iter().map(|(name, value)| (name, value.as_ref()))));
    }
    if let Some(Some(entries)) = &spec.egress {
        if let Err(wrong) = crate::egress::parse_list("egress", entries) {
            errors.extend(wrong);
        }
    }
    if let Some(m) = spec.memory_mb {
        if m < 64 || m > limits.max_memory_mb {
            errors.push(FieldError::new(
                "memory_mb",
                format!("memory must be between 64 and {} MB (the tenant's limit)", limits.max_memory_mb),
            ));
        }
    }
    if let Some(t) = spec.timeout_ms {
        if t < 100 || t > limits.max_timeout_ms {
            errors.push(FieldError::new(
                "timeout_ms",
                format!("timeout must be between 100 and {} ms (the tenant's limit)", limits.max_timeout_ms),
            ));
        }
    }
    if let Some(mode) = &spec.mode {
        if PoolMode::parse(mode).is_none() {
            errors.push(FieldError::new("mode", format!("unknown mode {mode:?}: use \"warm\" or \"per-call\"")));
        }
    }
    if let Some(n) = spec.max_instances {
        if n < 1 || n > limits.max_instances {
            errors.push(FieldError::new(
                "max_instances",
                format!("max instances must be between 1 and {} (the tenant's limit)", limits.max_instances),
            ));
        }
    }
    if let Some(n) = spec.min_instances {
        if n < 0 || n > limits.max_instances {
            errors.push(FieldError::new(
                "min_instances",
                format!("min instances must be between 0 and {} (the tenant's limit)", limits.max_instances),
            ));
        }
    }
    if let Some(n) = spec.concurrency {
        if !(1..=MAX_CONCURRENCY).contains(&n) {
            errors.push(FieldError::new(
                "concurrency",
                format!("concurrency must be between 1 and {MAX_CONCURRENCY} calls per container"),
            ));
        }
    }
    match &spec.trigger {
        Some(Trigger::VcdEvent { event, .. }) => {
            if let Err(e) = validate_event_type(event) {
                errors.push(FieldError::new("trigger", e));
            }
        }
        // Only what needs no time-zone database; the server parses the pattern and the zone.
        Some(Trigger::Schedule { cron, timezone }) => {
            if cron.trim().is_empty() {
                errors.push(FieldError::new("trigger.cron", "cron is empty: write 5 fields (minute hour day-of-month month day-of-week), e.g. \"*/5 * * * *\""));
            }
            if timezone.trim().is_empty() {
                errors.push(FieldError::new("trigger.timezone", "time zone is empty: give an IANA name such as \"Europe/Sofia\" or \"UTC\""));
            }
        }
        Some(Trigger::Http) | None => {}
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::DEFAULT_MAX_TREE_BYTES;

    #[test]
    fn spec_errors_name_their_field() {
        let limits = Limits { max_memory_mb: 256, max_timeout_ms: 10_000, max_instances: 4, default_memory_mb: 128, default_timeout_ms: 5000, max_files_bytes: DEFAULT_MAX_TREE_BYTES };
        let spec = FunctionSpec {
            name: "ok".into(),
            language: "cobol".into(),
            code: " ".into(),
            memory_mb: Some(1024),
            timeout_ms: Some(10),
            ..Default::default()
        };
        let fields: Vec<_> = validate_spec(&spec, &limits, true).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["language", "code", "memory_mb", "timeout_ms"]);
    }

    #[test]
    fn pool_capacity_is_checked_at_its_fields() {
        let limits = Limits { max_memory_mb: 256, max_timeout_ms: 10_000, max_instances: 4, default_memory_mb: 128, default_timeout_ms: 5000, max_files_bytes: DEFAULT_MAX_TREE_BYTES };
        let spec = |min, concurrency| FunctionSpec {
            name: "ok".into(),
            language: "nodejs".into(),
            code: "x".into(),
            min_instances: Some(min),
            concurrency: Some(concurrency),
            ..Default::default()
        };
        let fields = |s: FunctionSpec| validate_spec(&s, &limits, true).into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert!(fields(spec(0, 1)).is_empty());
        assert!(fields(spec(4, 100)).is_empty());
        assert_eq!(fields(spec(-1, 1)), ["min_instances"]);
        assert_eq!(fields(spec(5, 1)), ["min_instances"]);
        assert_eq!(fields(spec(1, 0)), ["concurrency"]);
        assert_eq!(fields(spec(1, 101)), ["concurrency"]);

        assert_eq!(validate_capacity("warm", 2, 2), None);
        assert!(validate_capacity("warm", 3, 2).unwrap().message.contains("must not exceed max instances (2)"));
        assert_eq!(validate_capacity("per-call", 1, 4).unwrap().field, "min_instances");
        assert_eq!(validate_capacity("per-call", 0, 4), None);
    }

    #[test]
    fn a_schedule_needs_a_pattern_and_a_zone_here_and_is_read_on_the_server() {
        let limits = Limits { max_memory_mb: 256, max_timeout_ms: 10_000, max_instances: 4, default_memory_mb: 128, default_timeout_ms: 5000, max_files_bytes: DEFAULT_MAX_TREE_BYTES };
        let spec = |cron: &str, timezone: &str| FunctionSpec {
            name: "ok".into(),
            language: "nodejs".into(),
            code: "x".into(),
            trigger: Some(Trigger::Schedule { cron: cron.into(), timezone: timezone.into() }),
            ..Default::default()
        };
        let fields = |s: FunctionSpec| validate_spec(&s, &limits, true).into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(spec(" ", "")), ["trigger.cron", "trigger.timezone"]);
        // The portal has no zone database: the pattern and the zone are read by the server.
        assert!(fields(spec("*/5 * * * *", "Europe/Sofia")).is_empty());
    }

    #[test]
    fn templates_are_valid_specs() {
        let limits = Limits { max_memory_mb: 256, max_timeout_ms: 10_000, max_instances: 4, default_memory_mb: 128, default_timeout_ms: 5000, max_files_bytes: DEFAULT_MAX_TREE_BYTES };
        for &lang in Language::ALL {
            let spec = FunctionSpec {
                name: "hello".into(),
                language: lang.as_str().into(),
                code: lang.hello_template().into(),
                ..Default::default()
            };
            assert!(validate_spec(&spec, &limits, true).is_empty());
        }
    }
}
