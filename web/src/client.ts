// The one place the dashboard takes the TypeScript client from (client-ts/, bundled in).

export { HttpClient, SluiceClient, SluiceError } from "../../client-ts/src/index";
export type { Column, Status, Subscription, Value } from "../../client-ts/src/index";
