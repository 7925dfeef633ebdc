//! The polling baseline: the same tables in SQLite (in memory, with indexes on the join and
//! group columns, as a sensible schema would have), each transaction applied as an UPDATE,
//! then the query re-run and every row read — what a dashboard that polls after each
//! transaction pays.

use super::workload::{Data, A, TABLES};
use anyhow::Result;
use rusqlite::{params, Connection};
use std::time::{Duration, Instant};

pub struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    /// The tables loaded with `data`'s current rows.
    pub fn load(data: &Data) -> Result<Sqlite> {
        let mut conn = Connection::open_in_memory()?;
        for ddl in TABLES {
            conn.execute(ddl, [])?;
        }
        let tx = conn.transaction()?;
        {
            let mut a = tx.prepare("INSERT INTO a VALUES (?1, ?2, ?3, ?4)")?;
            for r in &data.a {
                a.execute(params![r.0 as i64, r.1 as i64, r.2, r.3 as i64])?;
            }
            let mut b = tx.prepare("INSERT INTO b VALUES (?1, ?2, ?3)")?;
            let mut c = tx.prepare("INSERT INTO c VALUES (?1, ?2)")?;
            for i in 0..data.n {
                let (id, c_id, w) = data.b(i);
                b.execute(params![id as i64, c_id as i64, w])?;
                let (id, x) = data.c(i);
                c.execute(params![id as i64, x])?;
            }
        }
        tx.commit()?;
        conn.execute_batch(
            "CREATE INDEX a_b_id ON a (b_id); CREATE INDEX a_g ON a (g); CREATE INDEX a_v ON a (v);
             CREATE INDEX b_c_id ON b (c_id); ANALYZE;",
        )?;
        Ok(Sqlite { conn })
    }

    /// Applies updates of table a as one transaction (not timed).
    pub fn apply(&mut self, updates: &[(A, A)]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut up = tx.prepare_cached("UPDATE a SET g = ?2, v = ?3 WHERE id = ?1")?;
            for (_, n) in updates {
                up.execute(params![n.0 as i64, n.1 as i64, n.2])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Time to run `sql` and read every row of its result.
    pub fn timed_query(&self, sql: &str) -> Result<Duration> {
        let t = Instant::now();
        let mut stmt = self.conn.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            for i in 0..columns {
                std::hint::black_box(row.get_ref(i)?);
            }
        }
        Ok(t.elapsed())
    }
}
