// The schema endpoint's answer (GET /v1/database/NAME/schema): the module's tables and
// reducers with their column and parameter types.

export interface Field {
  name: string;
  type: string; // bool | i64 | u64 | f64 | string | bytes
  nullable: boolean;
}

export interface TableDef {
  name: string;
  public: boolean;
  columns: Field[];
  primary_key?: string[];
  scheduled?: string;
}

export interface ReducerDef {
  name: string;
  params: Field[];
  lifecycle?: string;
}

export interface Schema {
  name: string;
  owner: string | null;
  tables: TableDef[];
  reducers: ReducerDef[];
}

export function readSchema(json: unknown): Schema {
  const o = (json ?? {}) as Record<string, unknown>;
  const arr = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v : []);
  const fields = (v: unknown): Field[] =>
    arr(v).map((f) => ({ name: String(f.name), type: String(f.type), nullable: Boolean(f.nullable) }));
  return {
    name: String(o.name ?? ""),
    owner: typeof o.owner === "string" ? o.owner : null,
    tables: arr(o.tables).map((t) => ({
      name: String(t.name),
      public: t.public !== false,
      columns: fields(t.columns),
      primary_key: Array.isArray(t.primary_key) ? t.primary_key.map(String) : undefined,
      scheduled: typeof t.scheduled === "string" ? t.scheduled : undefined,
    })),
    reducers: arr(o.reducers).map((r) => ({
      name: String(r.name),
      params: fields(r.params),
      lifecycle: typeof r.lifecycle === "string" ? r.lifecycle : undefined,
    })),
  };
}
