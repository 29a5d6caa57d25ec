//! Containers that run one job to its end, such as a dependency install: locked down like a
//! function container, with their output streamed as it comes and a deadline.

use super::engine::{fail, locked_down, Engine, EngineError, Limits, LABEL_INSTALLATION};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptions, LogsOptions, WaitContainerOptions};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::time::Duration;

/// Marks job containers, so a restart can remove any left behind.
pub const LABEL_JOB: &str = "vcd-faas.job";

pub struct JobSpec<'a> {
    /// What the job is, e.g. `npm-install`: its container's label.
    pub kind: &'a str,
    pub image: &'a str,
    pub command: Vec<String>,
    pub env: Vec<String>,
    /// `host path:container path` mounts.
    pub binds: Vec<String>,
    pub working_dir: &'a str,
    pub memory_mb: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
    pub tmp_mb: i64,
    pub deadline: Duration,
}

/// How a job ended.
#[derive(Debug, PartialEq, Eq)]
pub enum JobEnd {
    Exited(i64),
    OutOfMemory,
    TimedOut,
}

impl Engine {
    /// Runs a job container to its end and removes it; each piece of output goes to `output`.
    pub async fn run_job(&self, spec: &JobSpec<'_>, output: &mut (dyn FnMut(&str) + Send)) -> Result<JobEnd, EngineError> {
        let limits = Limits { memory_mb: spec.memory_mb, nano_cpus: spec.nano_cpus, pids_limit: spec.pids_limit };
        // Unlike a function's, a job's /tmp may hold programs (packages build there).
        let host_config = locked_down(&limits, format!("rw,nosuid,nodev,size={}m", spec.tmp_mb), spec.binds.clone());
        let labels = HashMap::from([
            (LABEL_JOB.to_string(), spec.kind.to_string()),
            (LABEL_INSTALLATION.to_string(), self.installation.clone()),
        ]);
        let body = ContainerCreateBody {
            image: Some(spec.image.into()),
            cmd: Some(spec.command.clone()),
            env: Some(spec.env.clone()),
            labels: Some(labels),
            user: Some("10001:10001".into()),
            working_dir: Some(spec.working_dir.into()),
            network_disabled: Some(true),
            host_config: Some(host_config),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(None::<CreateContainerOptions>, body)
            .await
            .map_err(fail("create job container"))?;
        let ended = self.follow_job(&created.id, spec.deadline, output).await;
        let _ = self.remove_container(&created.id).await;
        ended
    }

    async fn follow_job(&self, id: &str, deadline: Duration, output: &mut (dyn FnMut(&str) + Send)) -> Result<JobEnd, EngineError> {
        self.docker.start_container(id, None).await.map_err(fail("start job container"))?;
        let follow = async {
            let options = LogsOptions { follow: true, stdout: true, stderr: true, ..Default::default() };
            let mut logs = self.docker.logs(id, Some(options));
            while let Some(Ok(chunk)) = logs.next().await {
                output(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
            let mut wait = self.docker.wait_container(id, None::<WaitContainerOptions>);
            // A non-zero exit comes back as an error that carries the code.
            match wait.next().await {
                Some(Ok(status)) => Ok(status.status_code),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
                Some(Err(e)) => Err(EngineError { call: "wait for job container", source: e }),
                None => Ok(-1),
            }
        };
        let Ok(code) = tokio::time::timeout(deadline, follow).await else { return Ok(JobEnd::TimedOut) };
        let code = code?;
        if self.container_end(id).await.is_ok_and(|end| end.oom_killed) {
            return Ok(JobEnd::OutOfMemory);
        }
        Ok(JobEnd::Exited(code))
    }
}
