//! The `sluice` commands that talk to a server (`--server URL`): publish, call, sql,
//! subscribe, logs, describe, list, delete. The identity's token is kept per server in a
//! config file (`$SLUICE_CONFIG`, else `~/.config/sluice/config.json`), made on first use.

use crate::output::{print_rows, row_json};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use sluice_client::{Client, Config, Http, SqlResult, Transaction};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The config file's path.
fn config_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").context("HOME is not set (or set SLUICE_CONFIG)")?;
    Ok(Path::new(&home).join(".config/sluice/config.json"))
}

/// The token for `server`, asking the server for a new identity the first time.
pub fn token(server: &str) -> Result<String> {
    let path = config_path()?;
    let mut config: Json = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?,
        Err(_) => json!({}),
    };
    if let Some(t) = config["servers"][server]["token"].as_str() {
        return Ok(t.to_string());
    }
    let (identity, token) = Http::new(server, None).new_identity()?;
    config["servers"][server] = json!({ "identity": identity, "token": token });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_private(&path, serde_json::to_string_pretty(&config)?.as_bytes())
        .with_context(|| format!("{}", path.display()))?;
    Ok(token)
}

/// Writes a file only its owner may read or write (mode 0600): the config holds tokens, each
/// as good as a password. An existing file is narrowed to 0600 too, before the write.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
}

/// What to do about an error that refused the token saved for `server`: a server whose
/// signing key changed (its data directory replaced) no longer accepts the tokens it gave
/// before. Forgetting the token silently would change who the commands act as, so this only
/// says how.
pub fn stale_token_hint(server: &str, error: &anyhow::Error) -> Option<String> {
    let refused = error.chain().any(|e| e.to_string().contains("invalid token: the signature does not match"));
    let path = config_path().ok()?;
    refused.then(|| {
        format!(
            "the token saved for {server} in {} was not signed by this server (was its data directory \
             replaced?); remove the \"{server}\" entry under \"servers\" there, and the next command \
             makes a new identity",
            path.display()
        )
    })
}

fn http(server: &str) -> Result<Http> {
    Ok(Http::new(server, Some(token(server)?)))
}

pub fn publish(server: &str, name: &str, path: &Path, wasm: Option<&Path>, clear: bool) -> Result<()> {
    let file = match wasm {
        Some(f) => f.to_path_buf(),
        None => crate::build::build(path)?,
    };
    let bytes = std::fs::read(&file).with_context(|| format!("{}", file.display()))?;
    let answer = http(server)?.publish(name, &bytes, clear)?;
    println!("{name}: {}", answer["outcome"].as_str().unwrap_or("published"));
    Ok(())
}

/// Calls a reducer with command-line arguments, read as `call_arguments` says.
pub fn call(server: &str, name: &str, reducer: &str, args: &[String]) -> Result<()> {
    let http = http(server)?;
    let described = http.describe(name)?;
    let params = described["reducers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == reducer)
        .map(|r| r["params"].as_array().cloned().unwrap_or_default());
    let args = match params {
        Some(params) => call_arguments(&params, args)?,
        // The server names what is wrong with an unknown reducer.
        None => Json::Array(args.iter().map(|a| Json::String(a.clone())).collect()),
    };
    let offset = http.call(name, reducer, &args)?;
    println!("committed at offset {offset}");
    Ok(())
}

/// A reducer's parameters as its description lists them: `name: type, …`.
fn signature(params: &[Json]) -> String {
    let each =
        params.iter().map(|p| format!("{}: {}", p["name"].as_str().unwrap_or(""), p["type"].as_str().unwrap_or("")));
    each.collect::<Vec<_>>().join(", ")
}

/// A call's command-line arguments as JSON, read by the reducer's declared parameters: in
/// order, or all as `NAME=VALUE`; a `string` parameter takes its text as it is (`123` is the
/// text "123"), any other its JSON (`-5`, `true`, `[1, 2]`).
fn call_arguments(params: &[Json], args: &[String]) -> Result<Json> {
    let param = |n: &str| params.iter().find(|p| p["name"] == n);
    let value = |p: &Json, text: &str| -> Result<Json> {
        if p["type"] == "string" {
            return Ok(Json::String(text.to_string()));
        }
        serde_json::from_str(text).with_context(|| {
            format!(
                "argument {} ({}) is not a {} value: {text}",
                p["name"],
                p["type"].as_str().unwrap_or("?"),
                p["type"]
            )
        })
    };
    let named: Vec<(&str, &str)> =
        args.iter().filter_map(|a| a.split_once('=')).filter(|(n, _)| param(n).is_some()).collect();
    if !named.is_empty() {
        anyhow::ensure!(named.len() == args.len(), "give every argument by name (NAME=VALUE) or none");
        let mut object = serde_json::Map::new();
        for (n, text) in named {
            object.insert(n.to_string(), value(param(n).expect("found above"), text)?);
        }
        return Ok(Json::Object(object));
    }
    anyhow::ensure!(
        args.len() == params.len(),
        "the reducer takes {} arguments ({}), {} given",
        params.len(),
        signature(params),
        args.len()
    );
    Ok(Json::Array(params.iter().zip(args).map(|(p, a)| value(p, a)).collect::<Result<_>>()?))
}

pub fn sql(server: &str, name: &str, query: &str, as_of: Option<&str>, json: bool) -> Result<()> {
    match http(server)?.sql(name, query, as_of)? {
        SqlResult::Rows(answer) => {
            print_rows(&answer.columns, &answer.rows, json);
            if !json {
                println!("({} rows, as of offset {})", answer.rows.len(), answer.offset);
            }
        }
        SqlResult::Changed { rows, offset } if json => println!("{}", json!({ "changed": rows, "offset": offset })),
        SqlResult::Changed { rows, offset } => {
            println!("{rows} row{} changed (offset {offset})", if rows == 1 { "" } else { "s" })
        }
    }
    Ok(())
}

/// Prints each query's rows, then every transaction's changes as it commits; stops after
/// `count` transactions if given.
pub fn subscribe(server: &str, name: &str, queries: &[String], count: Option<usize>, json: bool) -> Result<()> {
    let mut config = Config::new(server, name);
    config.token = Some(token(server)?);
    let mut client = Client::connect(config)?;
    let (sender, updates) = std::sync::mpsc::channel::<Transaction>();
    client.on_transaction(move |tx| drop(sender.send(tx.clone())));
    let refs: Vec<&str> = queries.iter().map(String::as_str).collect();
    // The rows as of the subscription's offset (the cache may already be past it).
    let (offset, applied) = client.subscribe(&refs)?;
    for sql in queries {
        let applied = applied.iter().find(|a| &a.sql == sql).context("the subscription is applied")?;
        let (columns, rows) = (&applied.columns, &applied.rows);
        if json {
            let rows: Vec<Json> = rows.iter().map(|r| row_json(columns, r)).collect();
            println!("{}", json!({ "query": sql, "offset": offset, "rows": rows }));
        } else {
            println!("{sql}  (as of offset {offset})");
            print_rows(columns, rows, false);
            println!();
        }
    }
    let mut seen = 0;
    while count.is_none_or(|n| seen < n) {
        let tx = match updates.recv_timeout(Duration::from_millis(200)) {
            Ok(tx) => tx,
            Err(_) => match client.closed() {
                Some(reason) => bail!("{reason}"),
                None => continue,
            },
        };
        seen += 1;
        for (sql, inserts, deletes) in &tx.updates {
            let columns = client.with_cache(sql, |c| c.columns.clone()).unwrap_or_default();
            if json {
                let rows = |rs: &[sluice_client::Row]| rs.iter().map(|r| row_json(&columns, r)).collect::<Vec<_>>();
                let line = json!({
                    "query": sql, "offset": tx.offset, "reducer": tx.reducer, "caller": tx.caller,
                    "inserts": rows(inserts), "deletes": rows(deletes),
                });
                println!("{line}");
            } else {
                println!("offset {} ({}): {sql}", tx.offset, tx.reducer);
                for r in deletes {
                    println!("  - {}", r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" | "));
                }
                for r in inserts {
                    println!("  + {}", r.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" | "));
                }
            }
        }
    }
    Ok(())
}

/// Prints transactions after `after`; with `follow`, keeps printing new ones.
pub fn logs(server: &str, name: &str, follow: bool) -> Result<()> {
    let http = http(server)?;
    pages(
        follow,
        "offset",
        |after| Ok(http.logs(name, after, 1000)?),
        |r| {
            println!(
                "{:>10}  {:>16}  {:<20}  {:<16}  {} rows  {}",
                r["offset"],
                r["timestamp_micros"],
                r["reducer"].as_str().unwrap_or(""),
                r["caller"].as_str().map_or("", |c| &c[..c.len().min(16)]),
                r["rows"],
                r["args"].as_str().unwrap_or(""),
            )
        },
    )
}

/// Prints the module's log lines; with `follow`, keeps printing new ones.
pub fn module_logs(server: &str, name: &str, follow: bool) -> Result<()> {
    let http = http(server)?;
    pages(
        follow,
        "seq",
        |after| Ok(http.module_logs(name, after)?),
        |l| {
            println!(
                "{:>6}  {:>16}  {:<5}  {:<16}  {}",
                l["seq"],
                l["timestamp_micros"],
                l["level"].as_str().unwrap_or(""),
                l["reducer"].as_str().unwrap_or(""),
                l["message"].as_str().unwrap_or(""),
            )
        },
    )
}

/// Prints the items `fetch` gives after a position, each numbered by its field `position`,
/// page after page; with `follow`, keeps asking for more as they come.
fn pages(
    follow: bool,
    position: &str,
    mut fetch: impl FnMut(u64) -> Result<Vec<Json>>,
    mut print: impl FnMut(&Json),
) -> Result<()> {
    let mut after = 0;
    loop {
        let items = fetch(after)?;
        for item in &items {
            print(item);
            after = item[position].as_u64().unwrap_or(after);
        }
        if items.is_empty() {
            if !follow {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

pub fn describe(server: &str, name: &str) -> Result<()> {
    let d = http(server)?.describe(name)?;
    println!("database {name}, owner {}", d["owner"].as_str().unwrap_or("(the server)"));
    for t in d["tables"].as_array().into_iter().flatten() {
        let cols: Vec<String> = t["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let null = if c["nullable"] == json!(true) { "?" } else { "" };
                format!("{} {}{null}", c["name"].as_str().unwrap_or(""), c["type"].as_str().unwrap_or(""))
            })
            .collect();
        let public = if t["public"] == json!(false) { "private" } else { "public" };
        println!(
            "table {} ({public}): {}  primary key {}",
            t["name"].as_str().unwrap_or(""),
            cols.join(", "),
            t["primary_key"]
        );
    }
    for r in d["reducers"].as_array().into_iter().flatten() {
        let params = signature(r["params"].as_array().map_or(&[][..], Vec::as_slice));
        let role = r["lifecycle"].as_str().map(|l| format!("  [{l}]")).unwrap_or_default();
        println!("reducer {}({params}){role}", r["name"].as_str().unwrap_or(""));
    }
    Ok(())
}

pub fn list(server: &str) -> Result<()> {
    for d in http(server)?.list()?.as_array().into_iter().flatten() {
        print!("{}  owner {}", d["name"].as_str().unwrap_or(""), d["owner"].as_str().unwrap_or("(the server)"));
        match d["unavailable"].as_str() {
            Some(error) => println!("  UNAVAILABLE: {error}"),
            None => println!(),
        }
    }
    Ok(())
}

pub fn delete(server: &str, name: &str) -> Result<()> {
    http(server)?.delete(name)?;
    println!("{name}: deleted");
    Ok(())
}
