//! The server's CPU priority beside the function containers on the same machine.
//!
//! Under load the gateway, its clients and the containers all want the same cores. With the
//! ordinary policy every answer a container sends wakes the gateway ahead of whatever runs, to
//! forward one call, and its own answer to the client preempts it again: two task switches per
//! call. Under SCHED_BATCH, at a slightly lower priority, the gateway runs when a core is free
//! or its turn comes, and then forwards every call that is ready. An idle machine serves it at
//! once either way, so a lone call is no slower.

/// Nice level of the server's threads (0 is the default, 19 the lowest).
const NICE: libc::c_int = 5;

/// Puts the calling thread, and every thread it starts afterwards, under SCHED_BATCH at nice
/// `NICE`.
pub fn yield_to_functions() -> Result<(), String> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: system calls on the calling thread (pid 0) with a valid parameter.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        return Err(format!("SCHED_BATCH: {}", std::io::Error::last_os_error()));
    }
    // On Linux the nice level belongs to the thread, and threads started later inherit it.
    // SAFETY: as above.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) } != 0 {
        return Err(format!("nice {NICE}: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_thread_started_after_the_change_runs_in_batch_at_the_lower_priority() {
        let observed = std::thread::spawn(|| {
            super::yield_to_functions().unwrap();
            std::thread::spawn(|| {
                // SAFETY: reads of the calling thread's own scheduling settings.
                let policy = unsafe { libc::sched_getscheduler(0) };
                let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
                (policy, nice)
            })
            .join()
            .unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(observed, (libc::SCHED_BATCH, super::NICE));
    }
}
