// The finance console (served by the reconciliation service at /console/): budgets and
// their burn, settlement runs and the batch workflow, the cash-out review, the cross-check
// and the audit log, for province and city finance officers.

import { render } from "preact";
import { App, applyDocument, savedLang } from "./App";
import "./app.css";

applyDocument(savedLang());
const root = document.getElementById("app");
if (root) render(<App />, root);
