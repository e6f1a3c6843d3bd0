// Parse mermaid text with the real mermaid parser, headless under node.
//
//   node check.mjs < diagram.mmd          one diagram from stdin
//   node check.mjs a.mmd b.mmd ...        each file (one node start for many diagrams)
//
// Exit 0 when every diagram parses (prints "ok: TYPE" for each), 1 when any does not
// (prints mermaid's parse error, prefixed by the file name), 2 on a usage error.
//
// mermaid.parse() sanitises labels with DOMPurify, which needs a DOM when it is first
// imported (without one: "DOMPurify.addHook is not a function"), so a jsdom window and
// document are made global before mermaid is imported. Nothing is rendered: parse() only
// runs the diagram's grammar (for flowcharts, the same jison parser the renderer uses).
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const dom = new JSDOM("<!DOCTYPE html><html><body></body></html>", { pretendToBeVisual: true });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
for (const name of ["Element", "HTMLElement", "Node", "DocumentFragment", "DOMParser", "SVGElement"]) {
  globalThis[name] ??= dom.window[name];
}

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });

const sources = process.argv.length > 2
  ? process.argv.slice(2).map((path) => [path, () => readFileSync(path, "utf8")])
  : [["<stdin>", () => readFileSync(0, "utf8")]];

let failed = 0;
for (const [name, read] of sources) {
  let text;
  try {
    text = read();
  } catch (err) {
    process.stderr.write(`${name}: cannot read: ${err?.message ?? err}\n`);
    process.exit(2);
  }
  if (!text.trim()) {
    process.stderr.write(`${name}: no mermaid text\n`);
    failed += 1;
    continue;
  }
  try {
    const result = await mermaid.parse(text);
    process.stdout.write(`${name}: ok: ${result.diagramType}\n`);
  } catch (err) {
    process.stderr.write(`${name}: does not parse: ${err?.message ?? err}\n`);
    failed += 1;
  }
}
process.exit(failed ? 1 : 0);
