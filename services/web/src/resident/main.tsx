// The residents' H5 page (served by the issuance service at /app/): claim vouchers, show
// their dynamic codes (offline too), see what was spent and saved.

import { render } from "preact";
import { App, applyDocument } from "./App";
import { startClockSync } from "./clock";
import { adoptHandOff, savedElder, savedLang } from "./session";
import "./app.css";

adoptHandOff();
applyDocument(savedLang(), savedElder());
startClockSync();
const root = document.getElementById("app");
if (root) render(<App />, root);
