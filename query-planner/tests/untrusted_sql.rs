//! The SQL front end on untrusted text, property-tested with seeded random inputs (no
//! coverage-guided fuzzer runs on this toolchain): valid statements mutated token by token and
//! byte by byte — tokens dropped, repeated, swapped and inserted, the text cut and spliced
//! with random characters — each planned or refused with an error, never a panic or a stack
//! overflow, on a thread with the stack a new thread has.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_planner::{parse, Catalog, Dml, Planner};

fn catalog() -> Catalog {
    let mut c = Catalog::new();
    for ddl in [
        "CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER, s TEXT, r REAL, b BOOLEAN)",
        "CREATE TABLE u (id INTEGER PRIMARY KEY, t_id INTEGER NOT NULL, v UNSIGNED, name TEXT)",
    ] {
        let Dml::CreateTable(s) = Planner::new(&c).plan_statement(&parse(ddl).unwrap()[0]).unwrap() else {
            panic!("ddl")
        };
        c.add_table(s).unwrap();
    }
    c
}

/// Statements that plan: the seeds every input is grown from.
const SEEDS: &[&str] = &[
    "SELECT id, x + 1 AS y FROM t WHERE s LIKE 'a%' AND r BETWEEN 1 AND 2.5 ORDER BY y DESC LIMIT 10",
    "SELECT t.id, u.name FROM t JOIN u ON u.t_id = t.id WHERE u.v > 3",
    "SELECT t.id, COUNT(u.id) FROM t LEFT JOIN u ON u.t_id = t.id GROUP BY t.id HAVING COUNT(u.id) > 1",
    "SELECT DISTINCT s FROM t WHERE x IN (1, 2, 3) OR s IS NULL",
    "SELECT id FROM t WHERE x > (SELECT AVG(v) FROM u WHERE u.t_id = t.id)",
    "SELECT id FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.t_id = t.id) AND NOT b",
    "SELECT CASE WHEN x < 0 THEN 'neg' WHEN x = 0 THEN 'zero' ELSE 'pos' END, COALESCE(s, '') FROM t",
    "SELECT id FROM t UNION SELECT t_id FROM u EXCEPT SELECT 7",
    "SELECT CAST(x AS TEXT) || s, ABS(r), LENGTH(s), UPPER(s) FROM t WHERE x IS NOT DISTINCT FROM 3",
    "SELECT MIN(x), MAX(x), SUM(x), AVG(r) FROM t",
    "INSERT INTO t VALUES (1, 2, 'three', 4.5, TRUE), (2, NULL, NULL, NULL, NULL)",
    "UPDATE t SET x = x * 2, s = s || '!' WHERE id % 2 = 0",
    "DELETE FROM u WHERE t_id NOT IN (1, 2) OR name IS NULL",
    "SELECT * FROM t a, t b WHERE a.id = b.x ORDER BY a.id, b.id LIMIT 3 OFFSET 1",
];

/// Tokens, keywords and fragments spliced into the seeds.
const TOKENS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "JOIN",
    "LEFT",
    "ON",
    "GROUP",
    "BY",
    "HAVING",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "UNION",
    "ALL",
    "EXCEPT",
    "INTERSECT",
    "DISTINCT",
    "NOT",
    "AND",
    "OR",
    "IN",
    "EXISTS",
    "BETWEEN",
    "LIKE",
    "IS",
    "NULL",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
    "AS",
    "(",
    ")",
    ",",
    "*",
    "+",
    "-",
    "/",
    "%",
    "||",
    "=",
    "<>",
    "<",
    ">=",
    "'",
    "''",
    "\"",
    ";",
    "t",
    "u",
    "id",
    "x",
    "s",
    "t.id",
    "u.t_id",
    "nope",
    "COUNT(*)",
    "SUM(",
    "1",
    "0",
    "-9223372036854775808",
    "18446744073709551616",
    "1e308",
    "0.5",
    "'text'",
    "X'00ff'",
    ":sender",
    "?",
    "$1",
    "WITH",
    "RECURSIVE",
    "VALUES",
    "INSERT",
    "UPDATE",
    "SET",
    "DELETE",
    "CREATE",
    "TABLE",
    "DROP",
    "OVER",
    "PARTITION",
    "/*",
    "*/",
    "--",
];

/// A random change to `sql`.
fn mutate(rng: &mut StdRng, sql: &str) -> String {
    let mut words: Vec<String> = sql.split(' ').map(str::to_string).collect();
    let at = rng.random_range(0..=words.len());
    match rng.random_range(0..7) {
        0 if !words.is_empty() => {
            words.remove(at.min(words.len() - 1));
        }
        1 if !words.is_empty() => {
            let w = words[at.min(words.len() - 1)].clone();
            words.insert(at, w);
        }
        2 if words.len() > 1 => {
            let (one, other) = (at.min(words.len() - 1), rng.random_range(0..words.len()));
            words.swap(one, other);
        }
        3 => {
            let cut: String = sql.chars().take(rng.random_range(0..=sql.chars().count())).collect();
            return cut;
        }
        4 => {
            let mut chars: Vec<char> = sql.chars().collect();
            let at = rng.random_range(0..=chars.len());
            let c = match rng.random_range(0..3) {
                0 => rng.random_range(' '..='~'),
                1 => char::from_u32(rng.random_range(0..0x11_0000)).unwrap_or('\u{fffd}'),
                _ => ['\0', '\n', '\u{202e}', '\u{feff}', 'é'][rng.random_range(0..5)],
            };
            chars.insert(at, c);
            return chars.into_iter().collect();
        }
        _ => words.insert(at, TOKENS[rng.random_range(0..TOKENS.len())].to_string()),
    }
    words.join(" ")
}

#[test]
fn mutated_statements_plan_or_are_refused_never_panic() {
    let (planned, refused) = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let catalog = catalog();
            for seed in SEEDS {
                let stmt = &parse(seed).unwrap_or_else(|e| panic!("{seed}: {e}"))[0];
                Planner::new(&catalog).plan_statement(stmt).unwrap_or_else(|e| panic!("{seed}: {e}"));
            }
            let mut rng = StdRng::seed_from_u64(29);
            let (mut planned, mut refused) = (0, 0);
            for _ in 0..20_000 {
                let mut sql = SEEDS[rng.random_range(0..SEEDS.len())].to_string();
                for _ in 0..rng.random_range(1..4) {
                    sql = mutate(&mut rng, &sql);
                }
                let outcome = parse(&sql).map_err(|e| e.to_string()).and_then(|stmts| {
                    stmts
                        .iter()
                        .try_for_each(|s| Planner::new(&catalog).plan_statement(s).map(drop).map_err(|e| e.to_string()))
                });
                match outcome {
                    Ok(()) => planned += 1,
                    Err(e) => {
                        assert!(!e.trim().is_empty(), "{sql:?}: an error says what is wrong");
                        refused += 1;
                    }
                }
            }
            (planned, refused)
        })
        .unwrap()
        .join()
        .expect("no input panics the planner or overflows its stack");
    eprintln!("{planned} mutated statements planned, {refused} refused");
    assert!(planned > 500 && refused > 500, "the inputs reach both outcomes: {planned} planned, {refused} refused");
}
