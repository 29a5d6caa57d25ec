//! The cluster harness (`common::cluster`) itself: two hosts are two separate engines in two
//! network namespaces, images can be copied into one of them, a port of the root namespace's
//! loopback is reachable from inside through the forwarder (and loopback itself is not), and
//! dropping the hosts leaves nothing behind while the main engine keeps answering.
//! Needs root, `dockerd`, `ip`, `nsenter` and `python3`.

mod common;

use bollard::query_parameters::{CreateImageOptions, ListImagesOptions, RemoveImageOptions};
use common::cluster::{main_engine, Host};
use futures_util::StreamExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

/// A ~200 MB image another process may have built; timed when present, skipped otherwise.
const BIG: &str = "vcd-faas/runtime-nodejs:bookworm";

const PYTHON: &str = "/usr/bin/python3";

/// Connects to argv[1]:argv[2] and sends one line.
const SEND_LINE: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"hello through the forwarder\n")
s.close()
"#;

/// Exits 0 when argv[1]:argv[2] refuses the connection, 3 when it accepts it.
const EXPECT_REFUSED: &str = r#"
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
except ConnectionRefusedError:
    sys.exit(0)
sys.exit(3)
"#;

/// Listens on argv[1]:argv[2], answers one connection with a line.
const SERVE_LINE: &str = r#"
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
c, _ = s.accept()
c.sendall(b"hello from the namespace\n")
c.close()
"#;

/// Removes an image from the main engine when dropped (also when the test fails).
struct MainImage(String);

impl Drop for MainImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["-H", "unix:///var/run/docker.sock", "rmi", "-f", &self.0])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A root filesystem with one static file, imported into the main engine as `name`.
async fn make_tiny_image(main: &bollard::Docker, name: &str) {
    let data = b"hello from the cluster harness\n";
    let mut tarball = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tarball.append_data(&mut header, "hello.txt", &data[..]).unwrap();
    let tarball = tarball.into_inner().unwrap();
    let (repo, tag) = name.rsplit_once(':').unwrap();
    let options =
        CreateImageOptions { from_src: Some("-".into()), repo: Some(repo.into()), tag: Some(tag.into()), ..Default::default() };
    let mut progress = main.create_image(Some(options), Some(bollard::body_full(tarball.into())), None);
    while let Some(item) = progress.next().await {
        item.expect("docker import of the tiny image into the main engine");
    }
}

async fn tags(docker: &bollard::Docker) -> Vec<String> {
    let images = docker.list_images(None::<ListImagesOptions>).await.unwrap();
    images.into_iter().flat_map(|i| i.repo_tags).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_are_separate_engines_reachable_both_ways_and_leave_nothing_behind() {
    let main = main_engine().await;
    let main_id = main.info().await.unwrap().id.expect("main engine ID");

    let tiny = format!("vfh-harness/tiny:{}", std::process::id());
    let _remove_tiny = MainImage(tiny.clone());
    make_tiny_image(&main, &tiny).await;

    // Two hosts, started at the same time as parallel tests would.
    let timed = |index| async move {
        let started = Instant::now();
        let host = Host::start(index).await;
        (host, started.elapsed())
    };
    let ((mut one, one_took), (mut two, two_took)) = tokio::join!(timed(1), timed(2));
    println!("Host::start: host 1 {one_took:.2?}, host 2 {two_took:.2?} (started together)");

    // Separate engines, each with its own ID (own key.json), neither the main one.
    let (d1, d2) = (one.docker().await, two.docker().await);
    d1.ping().await.unwrap();
    d2.ping().await.unwrap();
    let id1 = d1.info().await.unwrap().id.expect("host 1 engine ID");
    let id2 = d2.info().await.unwrap().id.expect("host 2 engine ID");
    assert_ne!(id1, id2, "the two hosts share an engine ID");
    assert_ne!(id1, main_id);
    assert_ne!(id2, main_id);

    // Seeding copies to that host only, under its repo:tag name.
    let seeding = Instant::now();
    one.seed_images(&[&tiny]).await;
    println!("seed_images of the tiny image: {:.2?}", seeding.elapsed());
    assert!(tags(&d1).await.contains(&tiny), "{tiny} not listed on host 1: {:?}", tags(&d1).await);
    assert!(!tags(&d2).await.contains(&tiny), "{tiny} listed on host 2");

    if let Ok(big) = main.inspect_image(BIG).await {
        let seeding = Instant::now();
        one.seed_images(&[BIG]).await;
        let took = seeding.elapsed();
        let mb = big.size.unwrap_or(0) as f64 / 1e6;
        println!("seed_images of {BIG} ({mb:.0} MB): {took:.2?}");
        assert!(tags(&d1).await.contains(&BIG.to_string()));
    } else {
        println!("{BIG} is not on the main engine: big seed not timed");
    }

    // The forwarder: 127.0.0.1:<port> of the root namespace at host_addr:<port> inside.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    one.forward(port);
    let received = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut line = String::new();
        tokio::io::BufReader::new(stream).read_line(&mut line).await.unwrap();
        (line, listener)
    });
    let out = tokio::process::Command::from(one.command_in(Path::new(PYTHON)))
        .args(["-c", SEND_LINE, &one.host_addr.to_string(), &port.to_string()])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "sending through the forwarder: {}", stderr_of(&out));
    let (line, _listener) = tokio::time::timeout(Duration::from_secs(10), received).await.expect("line arrives").unwrap();
    assert_eq!(line, "hello through the forwarder\n");

    // Loopback is per namespace: the listener (still open) is not reachable as 127.0.0.1 inside.
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("the listener still answers in the root namespace");
    let out = tokio::process::Command::from(one.command_in(Path::new(PYTHON)))
        .args(["-c", EXPECT_REFUSED, "127.0.0.1", &port.to_string()])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "127.0.0.1:{port} was reachable from inside the namespace ({}): {}", out.status, stderr_of(&out));

    // The other way round: a process in the namespace on node_addr is reachable from the test.
    let node_port = free_port();
    let mut server = tokio::process::Command::from(two.command_in(Path::new(PYTHON)))
        .args(["-c", SERVE_LINE, &two.node_addr.to_string(), &node_port.to_string()])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match tokio::net::TcpStream::connect((two.node_addr, node_port)).await {
            Ok(stream) => break stream,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{}:{node_port} in host 2's namespace: {e}", two.node_addr),
        }
    };
    let mut line = String::new();
    tokio::io::BufReader::new(stream).read_line(&mut line).await.unwrap();
    assert_eq!(line, "hello from the namespace\n");
    assert!(server.wait().await.unwrap().success());

    // Losing a host: its engine stops answering, its processes are gone.
    let engine = two.engine_pid().expect("host 2 dockerd pid");
    two.kill_engine();
    assert!(!Path::new(&format!("/proc/{engine}")).exists(), "dockerd {engine} survived kill_engine");
    assert!(common::cluster::connect(&two.docker_host).await.is_err(), "host 2 still answers after kill_engine");
    d1.ping().await.expect("host 1 unaffected by host 2's loss");

    // Dropping removes namespaces, links, folders and processes; the main engine is untouched.
    let gone: Vec<(String, String, std::path::PathBuf)> =
        [&one, &two].iter().map(|h| (h.netns.clone(), h.link.clone(), h.dir.clone())).collect();
    drop((d1, d2));
    tokio::task::spawn_blocking(move || drop((one, two))).await.unwrap();
    let namespaces = String::from_utf8(Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).unwrap();
    for (netns, link, dir) in &gone {
        assert!(!namespaces.split_whitespace().any(|n| n == netns), "{netns} still listed: {namespaces}");
        let shown = Command::new("ip").args(["link", "show", link]).output().unwrap();
        assert!(!shown.status.success(), "link {link} still there");
        assert!(!dir.exists(), "{} still there", dir.display());
        let marker = format!("{}/", dir.display());
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            assert!(!cmdline.contains(&marker), "left running: {cmdline}");
        }
    }
    main.ping().await.expect("the main engine still answers");
    assert_eq!(main.info().await.unwrap().id.as_deref(), Some(main_id.as_str()));

    main.remove_image(&tiny, Some(RemoveImageOptions { force: true, ..Default::default() }), None).await.unwrap();
    assert!(main.inspect_image(&tiny).await.is_err());
}
