// The panels a database opens with when the URL names none: for the demo `game`, a live view
// of the match; for any other database, its first public table.

import type { TableDef } from "./schema";
import type { PanelSpec } from "./state";

const TEAM_SCORES =
  "SELECT t.name, COUNT(*) AS players, SUM(p.score) AS score\n" +
  "FROM player p JOIN team t ON t.id = p.team_id\n" +
  "GROUP BY t.name";

export const GAME_PANELS: PanelSpec[] = [
  { title: "Team scores", sql: TEAM_SCORES, view: "bars", label: "name", value: "score" },
  {
    title: "Top 10 players",
    sql:
      "SELECT p.name, t.name AS team, p.score, pos.x, pos.y\n" +
      "FROM player p JOIN team t ON t.id = p.team_id\n" +
      "JOIN position pos ON pos.player_id = p.id\n" +
      "ORDER BY p.score DESC, p.name LIMIT 10",
    view: "table",
  },
  { title: "Team scores over time", sql: TEAM_SCORES, view: "line", label: "name", value: "score" },
  {
    title: "In the goal now",
    sql:
      "SELECT p.name, t.name AS team, pos.x, pos.y\n" +
      "FROM position pos JOIN player p ON p.id = pos.player_id\n" +
      "JOIN team t ON t.id = p.team_id\n" +
      "WHERE pos.x < 8 AND pos.y < 8",
    view: "table",
  },
];

export function defaultPanels(database: string, tables: Pick<TableDef, "name" | "public">[]): PanelSpec[] {
  if (database === "game") return GAME_PANELS.map((p) => ({ ...p }));
  const first = tables.find((t) => t.public);
  return first ? [{ sql: `SELECT * FROM ${first.name}`, view: "table" }] : [];
}
