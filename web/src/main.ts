// The dashboard's entry point: the page is served by `sluice start`, so the server is this
// page's origin.

import { App } from "./app";

const root = document.getElementById("app");
if (root) void new App(root, location.origin).start();
