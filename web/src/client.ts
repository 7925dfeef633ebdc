// The one place the dashboard takes the TypeScript client from (client-ts/, bundled in).

export { HttpClient, SluiceClient, SluiceError, Subscription } from "../../client-ts/src/index";
export type { Column, TransactionInfo, Value } from "../../client-ts/src/index";
