/** `adaptorkit report`: read run folders and write a self-contained HTML comparison page (+ PNG charts). */
export { readRun, readRuns, type LoadedRun, type RoutingWeights } from './read-run.js';
export { renderReport, smoothEma, type ReportOptions } from './render.js';
export { writeReport, removeReportPngs, type WriteReportOptions, type WrittenReport } from './write.js';
export { Browser, Page, findChromium, CHROMIUM_FLAGS, type BrowserOptions, type PageProblems } from './chromium.js';
export { escapeHtml } from './format.js';
