// A form per reducer, generated from its parameter types: number inputs for integers and
// reals, a checkbox for booleans, text, hex for bytes, and a NULL box for nullable ones. The
// browser does not validate the form (novalidate): parseArgs checks every argument and says
// what is wrong beside the button. The call goes over the dashboard's connection, so its
// effects are in the panels when its result (the offset, or the error) is shown in
// `reducer-result-NAME`.

import { inputKind, parseArgs, type RawArg } from "./args";
import { h } from "./dom";
import type { ReducerDef } from "./schema";

export type Call = (reducer: string, args: Record<string, unknown>) => Promise<{ offset: number }>;

export function reducerForm(r: ReducerDef, call: Call, scheduled: boolean): HTMLFormElement {
  const inputs: { input: HTMLInputElement; nul: HTMLInputElement | null }[] = [];
  const fields = r.params.map((p) => {
    const kind = inputKind(p.type);
    const input = h("input", {
      name: p.name,
      "data-testid": `arg-${r.name}-${p.name}`,
      type: kind === "number" ? "number" : kind === "checkbox" ? "checkbox" : "text",
      step: p.type === "f64" ? "any" : kind === "number" ? "1" : null,
      min: p.type === "u64" ? "0" : null,
      placeholder: kind === "hex" ? "hex, e.g. 0a1b" : null,
    });
    const nul = p.nullable ? h("input", { type: "checkbox", title: "NULL", "data-testid": `null-${r.name}-${p.name}` }) : null;
    inputs.push({ input, nul });
    return h(
      "label",
      { class: `arg ${kind}` },
      h("span", { class: "arg-name" }, p.name),
      input,
      h("span", { class: "type" }, p.type + (p.nullable ? "?" : "")),
      nul ? h("span", { class: "null" }, nul, "null") : null,
    );
  });
  const result = h("output", { class: "result", "data-testid": `reducer-result-${r.name}` });
  const button = h("button", { type: "submit", "data-testid": `reducer-call-${r.name}` }, "Call");
  const form = h(
    "form",
    { class: "reducer", novalidate: true, "data-testid": `reducer-form-${r.name}`, "data-reducer": r.name },
    h("div", { class: "reducer-name" }, r.name, scheduled ? h("span", { class: "badge" }, "scheduled") : null),
    ...fields,
    h("div", { class: "actions" }, button, result),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const raws: RawArg[] = inputs.map(({ input, nul }) =>
      nul?.checked ? null : input.type === "checkbox" ? input.checked : input.value,
    );
    let args: Record<string, unknown>;
    try {
      const list = parseArgs(r.params, raws);
      args = Object.fromEntries(r.params.map((p, i) => [p.name, list[i]]));
    } catch (err) {
      show(result, "failed", (err as Error).message);
      return;
    }
    button.disabled = true;
    show(result, "pending", "…");
    try {
      const { offset } = await call(r.name, args);
      show(result, "committed", `committed at offset ${offset}`, offset);
    } catch (err) {
      show(result, "failed", err instanceof Error ? err.message : String(err));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function show(out: HTMLOutputElement, status: string, text: string, offset?: number): void {
  out.dataset.status = status;
  if (offset === undefined) delete out.dataset.offset;
  else out.dataset.offset = String(offset);
  out.textContent = text;
  out.title = text;
}
