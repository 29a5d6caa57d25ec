//! Where a call runs, decided from what the places last said of themselves. Pure: the members
//! view and the front's own in-flight counts come in, one index goes out.
//!
//! 1. A place with a warm container of the call's version that has room (this front's calls
//!    in flight there for the version fewer than its warm containers × concurrency) takes it:
//!    the one with the most room left. A warm call then costs no container start.
//! 2. Otherwise a container starts: at the least loaded place — the lowest share of its memory
//!    or CPU in use (the larger of the two), counting this front's calls in flight there as
//!    containers about to run. New containers so spread over the places.

/// One place a call can run (the local worker or a node), as last seen.
#[derive(Clone, Debug, Default)]
pub struct Candidate {
    pub memory_mb: i64,
    pub millicpus: i64,
    pub used_memory_mb: i64,
    pub used_millicpus: i64,
    /// Containers of the call's version there (idle or serving).
    pub warm: usize,
    /// Calls this front has in flight there for the call's version.
    pub mine_for_version: usize,
    /// Calls this front has in flight there, of any function.
    pub mine: usize,
}

/// What one container of the call's version takes.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    pub memory_mb: i64,
    pub millicpus: i64,
    /// Calls one container serves at once.
    pub concurrency: usize,
}

/// The index of the place to run the call at; `None` when there is none.
pub fn choose(candidates: &[Candidate], need: Need) -> Option<usize> {
    let room = |c: &Candidate| (c.warm * need.concurrency.max(1)) as f64 - c.mine_for_version as f64;
    let warm_with_room = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| room(c) > 0.0)
        .max_by(|(_, a), (_, b)| {
            let share = |c: &Candidate| room(c) / (c.warm * need.concurrency.max(1)) as f64;
            share(a).total_cmp(&share(b)).then(load(b, need).total_cmp(&load(a, need)))
        });
    if let Some((i, _)) = warm_with_room {
        return Some(i);
    }
    candidates.iter().enumerate().min_by(|(_, a), (_, b)| load(a, need).total_cmp(&load(b, need))).map(|(i, _)| i)
}

/// The larger of the memory and CPU shares a place would have in use with this front's calls
/// in flight there counted as containers.
fn load(c: &Candidate, need: Need) -> f64 {
    let pending = c.mine as i64;
    let memory = (c.used_memory_mb + pending * need.memory_mb) as f64 / c.memory_mb.max(1) as f64;
    let cpu = (c.used_millicpus + pending * need.millicpus) as f64 / c.millicpus.max(1) as f64;
    memory.max(cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEED: Need = Need { memory_mb: 128, millicpus: 500, concurrency: 1 };

    fn node(used_memory_mb: i64, warm: usize, mine_for_version: usize) -> Candidate {
        Candidate { memory_mb: 4096, millicpus: 2000, used_memory_mb, used_millicpus: 0, warm, mine_for_version, mine: mine_for_version }
    }

    #[test]
    fn a_warm_container_with_room_takes_the_call_even_on_a_busier_node() {
        let nodes = [node(0, 0, 0), node(3000, 1, 0), node(100, 0, 0)];
        assert_eq!(choose(&nodes, NEED), Some(1));
    }

    #[test]
    fn with_every_warm_container_busy_the_least_loaded_node_starts_one() {
        let nodes = [node(1000, 1, 1), node(200, 0, 0), node(600, 0, 0)];
        assert_eq!(choose(&nodes, NEED), Some(1));
    }

    #[test]
    fn calls_in_flight_count_as_load_so_cold_starts_spread() {
        // Both empty; the first already has two calls of this front starting containers.
        let nodes = [node(0, 0, 2), node(0, 0, 0)];
        assert_eq!(choose(&nodes, NEED), Some(1));
        // CPU counts too: a node with free memory but its cores taken is loaded.
        let busy_cpu = Candidate { used_millicpus: 1900, ..node(0, 0, 0) };
        assert_eq!(choose(&[busy_cpu, node(1500, 0, 0)], NEED), Some(1));
    }

    #[test]
    fn the_warm_node_with_the_most_room_left_is_chosen() {
        let nodes = [node(0, 2, 1), node(0, 2, 0)];
        assert_eq!(choose(&nodes, NEED), Some(1));
        let concurrent = Need { concurrency: 4, ..NEED };
        assert_eq!(choose(&[node(0, 1, 3), node(0, 1, 1)], concurrent), Some(1));
    }

    #[test]
    fn no_candidates_no_place() {
        assert_eq!(choose(&[], NEED), None);
    }
}
