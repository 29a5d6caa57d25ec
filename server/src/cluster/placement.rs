//! Where a call runs, decided from what the places last said of themselves. Pure: the members
//! view and the front's own in-flight counts come in, one index goes out.
//!
//! 1. A place with a warm container of the call's version that has room (this front's calls
//!    in flight there for the version fewer than its warm containers × concurrency) takes it:
//!    the one with the most room left. A warm call then costs no container start.
//! 2. Otherwise a container starts: at the least loaded place — the lowest share of its memory
//!    or CPU in use (the larger of the two), counting this front's calls in flight there as
//!    containers about to run. New containers so spread over the places.
//! 3. Unless the function holds its `max_instances` across the places already: then the call
//!    waits in the line of a place that holds some (the least busy), and each place is told
//!    how many it may run (`instances_here`: the limit less what the others hold), so the
//!    limit holds cluster-wide — as of the places' last heartbeats (a second old at most).

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
    /// Containers of the call's function there, any version.
    pub containers: usize,
}

/// What one container of the call's version takes.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    pub memory_mb: i64,
    pub millicpus: i64,
    /// Calls one container serves at once.
    pub concurrency: usize,
    /// The function's limit of containers, across all places.
    pub max_instances: usize,
}

/// Containers a place has, or is about to start for this front's calls, of the function.
fn holds(c: &Candidate, need: Need) -> usize {
    c.containers.max(c.mine_for_version.div_ceil(need.concurrency.max(1)))
}

/// How many containers of the function place `chosen` may run: the limit less what the
/// others hold, and never less than the containers it has already. (Its calls in flight are
/// not containers it may start: they wait in its line.)
pub fn instances_here(candidates: &[Candidate], chosen: usize, need: Need) -> usize {
    let others: usize = candidates.iter().enumerate().filter(|(i, _)| *i != chosen).map(|(_, c)| holds(c, need)).sum();
    need.max_instances.saturating_sub(others).max(candidates[chosen].containers).max(1)
}

/// The index of the place to run the call at; `None` when there is none.
pub fn choose(candidates: &[Candidate], need: Need) -> Option<usize> {
    let held: usize = candidates.iter().map(|c| holds(c, need)).sum();
    if held >= need.max_instances.max(1) {
        // At the limit: the least busy place that holds containers of the function.
        let busy = |c: &Candidate| c.mine_for_version as f64 / (holds(c, need) * need.concurrency.max(1)) as f64;
        let holding = candidates.iter().enumerate().filter(|(_, c)| holds(c, need) > 0);
        return holding.min_by(|(_, a), (_, b)| busy(a).total_cmp(&busy(b))).map(|(i, _)| i);
    }
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

/// How many of a function's `min_instances` node `me` keeps warm, of the `nodes` that take
/// calls. The nodes are ranked per function (by a hash of the function and the node's name)
/// and the minimum is dealt out over them in that order. Each node works its share out alone,
/// the shares add up to the minimum, different functions start on different nodes, and when a
/// node is lost or drained the others' shares grow to cover it.
pub fn warm_share(function_id: i64, min: usize, nodes: &[&str], me: &str) -> usize {
    let mut ranked = nodes.to_vec();
    ranked.sort_by_key(|name| (std::cmp::Reverse(rank(function_id, name)), *name));
    ranked.dedup();
    match ranked.iter().position(|name| *name == me) {
        Some(at) => min / ranked.len() + usize::from(at < min % ranked.len()),
        None => 0,
    }
}

/// FNV-1a of the function and the node's name: the same in every process and build.
fn rank(function_id: i64, node: &str) -> u64 {
    function_id.to_le_bytes().iter().chain(node.as_bytes()).fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ *b as u64).wrapping_mul(0x100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warm_minimum_is_dealt_out_over_the_nodes_and_moves_off_a_lost_one() {
        let nodes = ["node-1", "node-2", "node-3"];
        for function_id in 1..40 {
            for min in 0..8 {
                let shares: Vec<usize> = nodes.iter().map(|me| warm_share(function_id, min, &nodes, me)).collect();
                assert_eq!(shares.iter().sum::<usize>(), min, "f{function_id} min {min}: {shares:?}");
                assert!(shares.iter().max().unwrap() - shares.iter().min().unwrap() <= 1, "evenly: {shares:?}");
                // Losing node-2: the two left cover the whole minimum between them.
                let left = ["node-1", "node-3"];
                assert_eq!(left.iter().map(|me| warm_share(function_id, min, &left, me)).sum::<usize>(), min);
            }
        }
        assert_eq!(warm_share(1, 3, &nodes, "node-4"), 0, "a node not taking calls keeps none");
        // With one to keep, not every function picks the same node.
        let firsts: std::collections::HashSet<&str> =
            (1..40).map(|f| *nodes.iter().find(|me| warm_share(f, 1, &nodes, me) == 1).unwrap()).collect();
        assert_eq!(firsts.len(), 3, "{firsts:?}");
    }

    const NEED: Need = Need { memory_mb: 128, millicpus: 500, concurrency: 1, max_instances: 10 };

    fn node(used_memory_mb: i64, warm: usize, mine_for_version: usize) -> Candidate {
        Candidate { memory_mb: 4096, millicpus: 2000, used_memory_mb, used_millicpus: 0, warm, mine_for_version, mine: mine_for_version, containers: warm }
    }

    #[test]
    fn at_its_max_instances_across_nodes_a_function_starts_no_container_anywhere_else() {
        let limit = Need { max_instances: 2, ..NEED };
        // One container each on the first two (the second busy); the third is empty.
        let nodes = [node(500, 1, 0), node(500, 1, 1), node(0, 0, 0)];
        assert_eq!(choose(&nodes, limit), Some(0), "the least busy place holding one");
        assert_eq!(instances_here(&nodes, 0, limit), 1, "and it may not start a second");
        let all_busy = [node(500, 1, 1), node(500, 1, 3), node(0, 0, 0)];
        assert_eq!(choose(&all_busy, limit), Some(0), "the line of the less busy place");
        // Calls waiting in a place's line are no licence to start containers for them.
        let lined_up = [node(0, 0, 4), node(0, 1, 1)];
        assert_eq!(instances_here(&lined_up, 0, limit), 1, "the limit less the other's one");
        // Below the limit the empty node starts one, and may run what the others leave.
        let roomy = Need { max_instances: 5, ..NEED };
        assert_eq!(choose(&all_busy, roomy), Some(2));
        assert_eq!(instances_here(&all_busy, 2, roomy), 5 - 1 - 3);
        // Calls in flight count as containers about to start.
        assert_eq!(instances_here(&[node(0, 0, 2), node(0, 0, 0)], 1, Need { max_instances: 3, ..NEED }), 1);
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
