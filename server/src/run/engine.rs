//! The Docker engine, through bollard. Every error says which Docker call failed; everything
//! created carries the platform's labels so a restart can find it again.

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, CreateImageOptions, InspectContainerOptions, ListContainersOptions,
    ListImagesOptions, LogsOptions, RemoveContainerOptions, RemoveImageOptions, TagImageOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};

pub const LABEL_TENANT: &str = "vcd-faas.tenant";
pub const LABEL_FUNCTION: &str = "vcd-faas.function";
pub const LABEL_VERSION: &str = "vcd-faas.version";
/// The installation that owns a container or image.
pub const LABEL_INSTALLATION: &str = "vcd-faas.installation";
/// The server process that made a container.
pub const LABEL_PROCESS: &str = "vcd-faas.process";
/// Marks runtime base images, which the reconciler leaves alone.
pub const LABEL_RUNTIME: &str = "vcd-faas.runtime";

#[derive(Debug, thiserror::Error)]
#[error("docker {call}: {source}")]
pub struct EngineError {
    pub call: &'static str,
    #[source]
    pub source: bollard::errors::Error,
}

impl EngineError {
    pub fn is_not_found(&self) -> bool {
        matches!(self.source, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
    }
}

pub(super) fn fail(call: &'static str) -> impl FnOnce(bollard::errors::Error) -> EngineError {
    move |source| EngineError { call, source }
}

#[derive(Clone)]
pub struct Engine {
    pub(super) docker: Docker,
    pub(super) installation: String,
    /// This server process, as the label of the containers it makes (see `ops::processes`).
    process: String,
}

/// What a function container needs to be created.
pub struct ContainerSpec<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub labels: BTreeMap<String, String>,
    pub env: Vec<String>,
    /// Host folder mounted at `/run/faas`, where the runtime opens its socket.
    pub socket_dir: &'a str,
    pub memory_mb: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
    /// `RLIMIT_NPROC` inside (see `runner::Sandbox::runtime_limits`); `None`: unset.
    pub nproc: Option<i64>,
    pub tmp_mb: i64,
    /// The engine's runtime to run it under (`runsc` for gVisor); `None`: the default (runc).
    pub runtime: Option<&'a str>,
    /// Host folder mounted read-only at `/app` (a stem cell's, filled when it is specialized);
    /// `None`: the image's own `/app`.
    pub app_dir: Option<&'a str>,
}

/// What a container may use.
pub struct Limits {
    pub memory_mb: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
}

/// The sandbox every container of the platform runs in: no network, a read-only root, no
/// capabilities, no privilege gain, the limits, a size-capped `/tmp` and the given mounts.
pub(super) fn locked_down(limits: &Limits, tmp_options: String, binds: Vec<String>) -> HostConfig {
    let memory = limits.memory_mb * 1024 * 1024;
    HostConfig {
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: Some(limits.nano_cpus),
        pids_limit: Some(limits.pids_limit),
        network_mode: Some("none".into()),
        readonly_rootfs: Some(true),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges".into()]),
        tmpfs: Some(HashMap::from([("/tmp".to_string(), tmp_options)])),
        binds: Some(binds),
        ..Default::default()
    }
}

/// A container as the reconciler sees it.
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub created: i64,
    pub labels: HashMap<String, String>,
    /// False for a container created but not started (or one that has stopped).
    pub running: bool,
}

pub struct ImageSummary {
    pub id: String,
    pub tags: Vec<String>,
    pub created: i64,
    pub labels: HashMap<String, String>,
}

pub struct ContainerEnd {
    pub running: bool,
    pub oom_killed: bool,
    pub exit_code: Option<i64>,
}

impl Engine {
    /// Connects to `DOCKER_HOST` (or the local socket) and agrees on an API version with it.
    /// Connects to the engine and agrees on the API version.
    pub async fn connect(docker_host: Option<&str>, installation: &str) -> Result<Engine, EngineError> {
        let engine = Engine::unconnected(docker_host, installation)?;
        let docker = engine.docker.negotiate_version().await.map_err(fail("version"))?;
        Ok(Engine { docker, ..engine })
    }

    /// A client that has not talked to the engine yet (nothing is sent until a call needs it):
    /// what tests of the platform's rules use where no engine runs.
    pub fn unconnected(docker_host: Option<&str>, installation: &str) -> Result<Engine, EngineError> {
        let docker = match docker_host {
            Some(host) if !host.is_empty() => Docker::connect_with_host(host),
            _ => Docker::connect_with_local_defaults(),
        }
        .map_err(fail("connect"))?;
        let process = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
        Ok(Engine { docker, installation: installation.to_string(), process })
    }

    /// No engine: a front without a worker runs no containers and never uses one. Should
    /// something still try, it gets "connection refused" at once from a closed loopback port.
    pub fn absent(installation: &str) -> Engine {
        let docker = Docker::connect_with_http("http://127.0.0.1:9", 2, bollard::API_DEFAULT_VERSION).expect("a plain HTTP client");
        let process = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
        Engine { docker, installation: installation.to_string(), process }
    }

    /// The installation this engine's containers and images belong to.
    pub fn installation(&self) -> &str {
        &self.installation
    }

    pub fn process(&self) -> &str {
        &self.process
    }

    pub fn labels(&self, org: &str, function: &str, version: i64) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_INSTALLATION.to_string(), self.installation.clone()),
            (LABEL_TENANT.to_string(), org.to_string()),
            (LABEL_FUNCTION.to_string(), function.to_string()),
            (LABEL_VERSION.to_string(), version.to_string()),
        ])
    }

    /// The names of the runtimes the engine has registered (`runc`, and `runsc` where gVisor is).
    pub async fn runtimes(&self) -> Result<Vec<String>, EngineError> {
        let info = self.docker.info().await.map_err(fail("info"))?;
        Ok(info.runtimes.map(|r| r.into_keys().collect()).unwrap_or_default())
    }

    pub async fn ping(&self) -> Result<(), EngineError> {
        self.docker.ping().await.map_err(fail("ping")).map(|_| ())
    }

    pub async fn image_exists(&self, image: &str) -> Result<bool, EngineError> {
        Ok(self.image_labels(image).await?.is_some())
    }

    /// An image's labels; `None` when there is no such image.
    pub async fn image_labels(&self, image: &str) -> Result<Option<HashMap<String, String>>, EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(info) => Ok(Some(info.config.and_then(|c| c.labels).unwrap_or_default())),
            Err(e) => {
                let e = EngineError { call: "inspect image", source: e };
                if e.is_not_found() {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Pulls an image from a registry, reporting progress lines.
    pub async fn pull(&self, image: &str, progress: &(dyn Fn(&str) + Sync)) -> Result<(), EngineError> {
        let options = CreateImageOptions { from_image: Some(image.to_string()), ..Default::default() };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(fail("pull image"))?;
            if let Some(status) = info.status {
                progress(&status);
            }
        }
        Ok(())
    }

    /// Imports a root filesystem tar stream as an image (`docker import`).
    pub async fn import_rootfs(
        &self,
        image: &str,
        rootfs: impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
        changes: Vec<String>,
    ) -> Result<(), EngineError> {
        let (repo, tag) = image.rsplit_once(':').unwrap_or((image, "latest"));
        let options = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repo.into()),
            tag: Some(tag.into()),
            changes,
            ..Default::default()
        };
        let mut stream = self.docker.create_image(Some(options), Some(bollard::body_try_stream(rootfs)), None);
        while let Some(item) = stream.next().await {
            item.map_err(fail("import image"))?;
        }
        Ok(())
    }

    /// Builds an image from an in-memory tar context. Each output line goes to `log`; the
    /// result is the engine's error message when the build failed.
    pub async fn build(
        &self,
        context: Vec<u8>,
        tag: &str,
        log: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Result<(), String>, EngineError> {
        let options = BuildImageOptions {
            dockerfile: "Dockerfile".into(),
            t: Some(tag.into()),
            rm: true,
            forcerm: true,
            // Build steps never need the network: the context carries everything.
            networkmode: Some("none".into()),
            // No layer cache: images are reused by name, never by Docker's cache, and the cache
            // probe fails the build ("unable to find image") when another build's image is
            // removed while it scans the base image's children.
            nocache: true,
            ..Default::default()
        };
        let mut stream = self.docker.build_image(options, None, Some(bollard::body_full(context.into())));
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        log(&text);
                    }
                    if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                        return Ok(Err(detail));
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => return Ok(Err(error)),
                Err(bollard::errors::Error::DockerResponseServerError { status_code, message }) if status_code < 500 => {
                    return Ok(Err(message))
                }
                Err(e) => return Err(EngineError { call: "build image", source: e }),
            }
        }
        Ok(Ok(()))
    }

    pub async fn create_container(&self, spec: &ContainerSpec<'_>) -> Result<String, EngineError> {
        let limits = Limits { memory_mb: spec.memory_mb, nano_cpus: spec.nano_cpus, pids_limit: spec.pids_limit };
        let tmp = format!("rw,noexec,nosuid,nodev,size={}m", spec.tmp_mb);
        let mut binds = vec![format!("{}:/run/faas", spec.socket_dir)];
        binds.extend(spec.app_dir.map(|dir| format!("{dir}:/app:ro")));
        let host_config = HostConfig {
            // A chatty function must not fill the host's disk: its output is kept up to 2 MB.
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([("max-size".to_string(), "1m".to_string()), ("max-file".to_string(), "2".to_string())])),
            }),
            runtime: spec.runtime.map(str::to_string),
            ulimits: spec.nproc.map(|n| vec![ResourcesUlimits { name: Some("nproc".into()), soft: Some(n), hard: Some(n) }]),
            ..locked_down(&limits, tmp, binds)
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.into()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            env: Some(spec.env.clone()),
            user: Some("10001:10001".into()),
            network_disabled: Some(true),
            host_config: Some(host_config),
            ..Default::default()
        };
        let options = CreateContainerOptions { name: Some(spec.name.into()), ..Default::default() };
        let created = self.docker.create_container(Some(options), body).await.map_err(fail("create container"))?;
        Ok(created.id)
    }

    pub async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker.start_container(id, None).await.map_err(fail("start container"))
    }

    /// Freezes a running container's processes (the cgroup freezer): they hold their memory
    /// and use no CPU until `unpause_container`.
    pub async fn pause_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker.pause_container(id).await.map_err(fail("pause container"))
    }

    pub async fn unpause_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker.unpause_container(id).await.map_err(fail("unpause container"))
    }

    /// Removes a container, killing it first; an absent container is not an error.
    pub async fn remove_container(&self, id: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = EngineError { call: "remove container", source: e };
                if e.is_not_found() || e.source.to_string().contains("already in progress") {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    pub async fn container_end(&self, id: &str) -> Result<ContainerEnd, EngineError> {
        let info = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
            .map_err(fail("inspect container"))?;
        let state = info.state.unwrap_or_default();
        Ok(ContainerEnd {
            running: state.running.unwrap_or(false),
            oom_killed: state.oom_killed.unwrap_or(false),
            exit_code: state.exit_code,
        })
    }

    /// The last lines a container wrote to stdout and stderr.
    /// The container's last `lines` lines of output written at or after `since_ms` (Unix ms):
    /// a call's share of a container that served earlier calls too.
    pub async fn logs_since(&self, id: &str, since_ms: i64, lines: usize) -> String {
        let options = LogsOptions { stdout: true, stderr: true, timestamps: true, tail: lines.to_string(), ..Default::default() };
        let mut out = String::new();
        let mut stream = self.docker.logs(id, Some(options));
        while let Some(Ok(chunk)) = stream.next().await {
            out.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        lines_since(&out, since_ms)
    }

    /// Only this installation's function containers or images.
    fn own_filter(&self) -> Option<HashMap<String, Vec<String>>> {
        let labels = vec![LABEL_FUNCTION.to_string(), format!("{LABEL_INSTALLATION}={}", self.installation)];
        Some(HashMap::from([("label".to_string(), labels)]))
    }

    /// Every function container of this installation, running or not.
    pub async fn list_function_containers(&self) -> Result<Vec<ContainerSummary>, EngineError> {
        let options = ListContainersOptions { all: true, filters: self.own_filter(), ..Default::default() };
        let list = self.docker.list_containers(Some(options)).await.map_err(fail("list containers"))?;
        Ok(list
            .into_iter()
            .map(|c| ContainerSummary {
                id: c.id.unwrap_or_default(),
                name: c.names.and_then(|n| n.into_iter().next()).unwrap_or_default().trim_start_matches('/').to_string(),
                created: c.created.unwrap_or(0),
                labels: c.labels.unwrap_or_default(),
                running: c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING),
            })
            .collect())
    }

    /// Every function image of this installation.
    pub async fn list_function_images(&self) -> Result<Vec<ImageSummary>, EngineError> {
        let options = ListImagesOptions { filters: self.own_filter(), ..Default::default() };
        let list = self.docker.list_images(Some(options)).await.map_err(fail("list images"))?;
        Ok(list
            .into_iter()
            .map(|i| ImageSummary { id: i.id, tags: i.repo_tags, created: i.created, labels: i.labels })
            .collect())
    }

    /// Gives an image a second name (`repo:tag`), as `docker tag` does.
    pub async fn tag_image(&self, image: &str, name: &str) -> Result<(), EngineError> {
        let (repo, tag) = name.rsplit_once(':').unwrap_or((name, "latest"));
        let options = TagImageOptions { repo: Some(repo.into()), tag: Some(tag.into()) };
        self.docker.tag_image(image, Some(options)).await.map_err(fail("tag image"))
    }

    /// This installation's images that carry `label`, whatever its value.
    pub async fn list_images_labelled(&self, label: &str) -> Result<Vec<ImageSummary>, EngineError> {
        let labels = vec![label.to_string(), format!("{LABEL_INSTALLATION}={}", self.installation)];
        let options = ListImagesOptions { filters: Some(HashMap::from([("label".to_string(), labels)])), ..Default::default() };
        let list = self.docker.list_images(Some(options)).await.map_err(fail("list images"))?;
        Ok(list.into_iter().map(|i| ImageSummary { id: i.id, tags: i.repo_tags, created: i.created, labels: i.labels }).collect())
    }

    pub async fn remove_image(&self, image: &str) -> Result<(), EngineError> {
        let options = RemoveImageOptions { force: true, noprune: false, ..Default::default() };
        match self.docker.remove_image(image, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = EngineError { call: "remove image", source: e };
                if e.is_not_found() {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// Keeps the lines of a timestamped log (`<RFC 3339 time> <text>`, as the engine writes it)
/// written at or after `since_ms`, without their timestamps.
fn lines_since(log: &str, since_ms: i64) -> String {
    let since = since_ms as i128 * 1_000_000;
    let mut kept = String::new();
    for line in log.split_inclusive('\n') {
        let Some((stamp, text)) = line.split_once(' ') else { continue };
        let at = time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339);
        if at.is_ok_and(|at| at.unix_timestamp_nanos() >= since) {
            kept.push_str(text);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_lines_written_since_the_call_began_are_kept() {
        let log = "2026-11-28T10:00:00.100000000Z earlier call\n\
                   2026-11-28T10:00:01.500000000Z this call\n\
                   2026-11-28T10:00:02Z and its end\n";
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        let since = time::OffsetDateTime::parse("2026-11-28T10:00:01Z", rfc3339).unwrap().unix_timestamp() * 1000;
        assert_eq!(super::lines_since(log, since), "this call\nand its end\n");
        assert_eq!(super::lines_since("no stamp here\n", 0), "");
    }
}
