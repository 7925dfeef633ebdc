//! The client commands of `sluice` as a user runs them, against a real server process: the
//! token is made on first use and kept in the config file (so every later command is the
//! same identity), results print as tables or JSON lines, and errors go to stderr with a
//! non-zero exit status.

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::Output;

struct Cli {
    server: String,
    config: std::path::PathBuf,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .args(["--server", &self.server])
            .env("SLUICE_CONFIG", &self.config)
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; its standard error.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
        String::from_utf8(out.stderr).unwrap()
    }
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

#[test]
fn the_cli_as_a_user_runs_it() {
    let dir = std::env::temp_dir().join(format!("sluice-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (mut child, server) = common::start_server(&dir.join("data"));
    let cli = Cli { server, config: dir.join("config.json") };

    assert_eq!(cli.ok(&["list"]).trim(), "game  owner (the server)");
    let config: Value = serde_json::from_str(&std::fs::read_to_string(&cli.config).unwrap()).unwrap();
    let identity = config["servers"][&cli.server]["identity"].as_str().unwrap().to_string();
    assert_eq!(identity.len(), 64, "the first command made an identity and kept its token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&cli.config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token is its owner's alone to read");
    let described = cli.ok(&["describe", "game"]);
    assert!(
        described.contains("table tick_timer (private)")
            && described.contains("reducer join(name: string, team_id: u64)")
    );

    assert!(cli.ok(&["call", "game", "join", "alice", "1"]).starts_with("committed at offset "));
    // The same identity in a later process: :sender finds alice.
    let me =
        json_lines(&cli.ok(&["sql", "game", "SELECT name, team_id FROM player WHERE identity = :sender", "--json"]));
    assert_eq!(me, vec![serde_json::json!({"name": "alice", "team_id": 1})]);
    let table = cli.ok(&["sql", "game", "SELECT id, name FROM team ORDER BY id"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[..4], [" id | name", "----+------", " 1  | red", " 2  | blue"]);
    assert!(lines[4].starts_with("(2 rows, as of offset "), "{table}");

    // Subscribe: the rows, then each transaction's changes, a JSON object a line.
    let lines = json_lines(&cli.ok(&["subscribe", "game", "SELECT * FROM world", "--json", "-n", "2"]));
    assert_eq!(lines.len(), 3, "{lines:?}");
    let tick = lines[0]["rows"][0]["tick"].as_u64().unwrap();
    assert_eq!(lines[1]["deletes"][0]["tick"].as_u64(), Some(tick), "{lines:?}");
    assert_eq!(lines[1]["inserts"][0]["tick"].as_u64(), Some(tick + 1));
    assert_eq!(lines[2]["inserts"][0]["tick"].as_u64(), Some(tick + 2));
    assert_eq!(lines[2]["reducer"], "tick");

    // Publishing, updating, deleting a database of one's own.
    let wasm = dir.join("game.wasm");
    std::fs::write(&wasm, sluice::demo::GAME_WASM).unwrap();
    let wasm = wasm.to_str().unwrap();
    assert_eq!(cli.ok(&["publish", "mine", "--wasm", wasm]).trim(), "mine: created");
    assert_eq!(cli.ok(&["publish", "mine", "--wasm", wasm]).trim(), "mine: updated");
    // Arguments are read by the parameters' declared types: digits for a string parameter
    // are its text; negative numbers are numbers, not flags; NAME=VALUE in any order.
    assert!(cli.ok(&["call", "mine", "join", "123", "2"]).starts_with("committed at offset "));
    let me =
        json_lines(&cli.ok(&["sql", "mine", "SELECT name, team_id FROM player WHERE identity = :sender", "--json"]));
    assert_eq!(me, vec![serde_json::json!({"name": "123", "team_id": 2})]);
    assert!(cli.ok(&["call", "mine", "move_by", "-3", "-2"]).starts_with("committed at offset "));
    assert!(cli.ok(&["call", "mine", "move_by", "dy=1", "dx=-1"]).starts_with("committed at offset "));
    assert!(cli.fails(&["call", "mine", "move_by", "1"]).contains("the reducer takes 2 arguments"));
    assert!(cli.fails(&["call", "mine", "move_by", "left", "1"]).contains("is not a"));
    assert!(cli.ok(&["list"]).contains(&format!("mine  owner {identity}")));
    assert!(cli.ok(&["logs", "mine"]).lines().next().unwrap().contains("init"));
    // The owner's INSERT, UPDATE and DELETE, each statement a transaction.
    let changed = cli.ok(&["sql", "mine", "UPDATE team SET name = 'crimson' WHERE id = 1"]);
    assert!(changed.starts_with("1 row changed (offset "), "{changed}");
    let changed = json_lines(&cli.ok(&["sql", "mine", "DELETE FROM team WHERE id = 2", "--json"]));
    assert_eq!(changed[0]["changed"], 1);
    let teams = json_lines(&cli.ok(&["sql", "mine", "SELECT * FROM team", "--json"]));
    assert_eq!(teams, vec![serde_json::json!({"id": 1, "name": "crimson"})]);
    // The UPDATE and the DELETE are logged as `sql` (the game's tick may commit in between).
    let logged = cli.ok(&["logs", "mine"]);
    let reducers: Vec<&str> = logged.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert_eq!(reducers.iter().filter(|r| **r == "sql").count(), 2, "{logged}");
    assert_eq!(cli.ok(&["delete", "mine"]).trim(), "mine: deleted");
    // Publishing a module crate builds it first.
    if common::build_module("examples/game").is_some() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/game");
        assert_eq!(cli.ok(&["publish", "built", "--path", path.to_str().unwrap()]).trim(), "built: created");
        assert!(cli.ok(&["describe", "built"]).contains("reducer join(name: string, team_id: u64)"));
    }

    // Errors: stderr, non-zero status.
    assert!(cli.fails(&["call", "game", "nope"]).contains("nope"));
    assert!(cli.fails(&["sql", "game", "SELECT * FROM tick_timer"]).contains("private"));
    assert!(cli.fails(&["sql", "game", "SELECT nope FROM player"]).contains("nope"));
    assert!(cli.fails(&["sql", "game", "DELETE FROM team"]).contains("only the database's owner"));
    assert!(cli.fails(&["delete", "game"]).contains("nobody may delete it"));
    assert!(cli.fails(&["describe", "mine"]).contains("no database named mine"));
    let down = Cli { server: "http://127.0.0.1:9".into(), config: cli.config.clone() };
    assert!(down.fails(&["list"]).contains("cannot connect"));
    // A saved token this server did not sign (as after its data directory was replaced): the
    // refusal says which entry to remove, over HTTP and at a subscription's upgrade alike.
    let stale = Cli { server: cli.server.clone(), config: dir.join("stale.json") };
    let forged = format!("{identity}.{}", "0".repeat(64));
    let saved = serde_json::json!({ "servers": { &cli.server: { "identity": identity, "token": forged } } });
    std::fs::write(&stale.config, saved.to_string()).unwrap();
    for args in [&["list"][..], &["subscribe", "game", "SELECT * FROM world", "-n", "1"]] {
        let err = stale.fails(args);
        assert!(err.contains("invalid token: the signature does not match"), "{args:?}: {err}");
        let hint = format!("hint: the token saved for {} in {}", cli.server, stale.config.display());
        assert!(err.contains(&hint), "{args:?}: {err}");
    }
    assert!(!cli.fails(&["call", "game", "nope"]).contains("hint:"), "no hint for other errors");
    // Output into a pipe that closes early (`| head -n 1`) ends the command quietly.
    let mut piped = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["sql", "game", "SELECT * FROM player", "--server", &cli.server])
        .env("SLUICE_CONFIG", &cli.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(piped.stdout.take());
    let out = piped.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
