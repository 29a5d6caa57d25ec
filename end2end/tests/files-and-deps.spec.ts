// A function of several files with a package from the provider's registry mirror (the suite's
// verdaccio holds e2e-greet@1.0.0), written in the portal's editor; a path the platform refuses
// is shown at its tab; a zip loads into the tabs; two versions are compared.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Locator, Page } from "@playwright/test";
import { expect, expectEditorText, fileTab, hydrated, open, setEditorText, signIn, statusBadge, test, testFunction, waitForStatus } from "./support";

const HANDLER = 'const greeting = require("./lib/greeting");\nmodule.exports = async (event) => greeting(event.query.name || "world");\n';
const GREETING = 'const { greet } = require("e2e-greet");\nmodule.exports = (name) => greet(name);\n';
const MANIFEST = '{\n  "name": "greeter",\n  "version": "1.0.0",\n  "private": true,\n  "dependencies": { "e2e-greet": "1.0.0" }\n}\n';

/** Adds an empty file through the New file row. */
async function newFile(scope: Page | Locator, filePath: string): Promise<void> {
  await scope.getByRole("button", { name: "New file" }).click();
  await scope.locator("#file-path").fill(filePath);
  await scope.getByRole("button", { name: "Add file" }).click();
  await expect(fileTab(scope, filePath)).toHaveAttribute("aria-selected", "true");
}

test("a Node.js function of two files and a package from the registry builds and answers", async ({ page, state }) => {
  const { org } = state.tenant;
  const name = `greeter-${Date.now().toString(36)}`;
  await signIn(page, state.tenant);
  await open(page, "/functions/new");
  await page.locator("#fn-name").fill(name);

  await test.step("the files are written in the editor's tabs", async () => {
    await expect(fileTab(page, "handler.js")).toHaveAttribute("aria-selected", "true");
    await expect(page.getByRole("button", { name: "Delete", exact: true })).toBeDisabled();
    await setEditorText(page, HANDLER);

    await newFile(page, "lib/greeting.js");
    // Typed key by key through CodeMirror: brackets and quotes it closes itself are typed over.
    await page.locator(".cm-content").click();
    await page.keyboard.type(GREETING);
    await expectEditorText(page, GREETING);
    // Highlighted: tokens such as `const` are spans of their own.
    await expect(page.locator(".cm-content .cm-line span").first()).toHaveText("const");

    await page.getByRole("button", { name: "Add package.json" }).click();
    await expect(fileTab(page, "package.json")).toHaveAttribute("aria-selected", "true");
    await expectEditorText(page, /"dependencies": \{\}/);
    await setEditorText(page, MANIFEST);
    await expect(page.getByRole("button", { name: "Add package.json" })).toHaveCount(0);
  });

  await test.step("a path outside the function is refused at its tab, and nothing typed is lost", async () => {
    await newFile(page, "../x.js");
    await setEditorText(page, "module.exports = 1;\n");
    // Back to another tab: the server's answer brings the refused one into view.
    await fileTab(page, "handler.js").click();
    await page.getByRole("button", { name: "Create function" }).click();
    const error = page.locator('.field-error[data-field="files/../x.js"]');
    await expect(error).toBeVisible();
    await expect(error).toContainText('has a ".." segment');
    await expect(fileTab(page, "../x.js")).toHaveClass(/invalid/);
    await expect(fileTab(page, "../x.js")).toHaveAttribute("aria-selected", "true");
    await expect(page.getByRole("alert").filter({ hasText: "Please fix the marked field." })).toBeVisible();
    await expect(page).toHaveURL(/\/functions\/new$/);
    for (const [file, text] of [["handler.js", HANDLER], ["lib/greeting.js", GREETING], ["package.json", MANIFEST]]) {
      await fileTab(page, file).click();
      await expectEditorText(page, text);
    }
    await expect(page.locator("#fn-name")).toHaveValue(name);

    await fileTab(page, "../x.js").click();
    await page.getByRole("button", { name: "Delete", exact: true }).click();
    await page.getByRole("button", { name: "Delete file" }).click();
    await expect(fileTab(page, "../x.js")).toHaveCount(0);
  });

  await test.step("created: the build installs e2e-greet and the function answers through it", async () => {
    await page.getByRole("button", { name: "Create function" }).click();
    await expect(page).toHaveURL(new RegExp(`/functions/${org}/${name}$`));
    await waitForStatus(page, "ready");
    const result = await testFunction(page, "name=Ada");
    await expect(result.locator("[data-testid=test-status]")).toHaveText("200");
    await expect(result.locator("[data-testid=test-body]")).toHaveText("Hello, Ada!");
  });

  await test.step("the Files section shows v1's files read-only", async () => {
    const files = page.getByRole("region", { name: "Files" });
    await expect(files.getByRole("tab")).toHaveText(["handler.js", "package.json", "lib/greeting.js"]);
    await fileTab(files, "lib/greeting.js").click();
    await expectEditorText(files, GREETING);
    await expect(files.locator(".cm-content")).toHaveAttribute("aria-readonly", "true");
  });

  await test.step("a second version changes one file and adds another; the two are compared", async () => {
    const edit = page.getByRole("region", { name: "Edit function" });
    await edit.locator("summary").click();
    await fileTab(edit, "lib/greeting.js").click();
    await setEditorText(edit, GREETING.replace("greet(name)", 'greet(name).replace("!", "!!")'));
    await newFile(edit, "data/note.txt");
    await setEditorText(edit, "a note\n");
    await edit.getByRole("button", { name: "Save new version" }).click();
    await expect(edit.getByRole("status")).toContainText("version 2 is building");
    await expect(page.locator("[data-testid=serving-version]")).toHaveText("v2", { timeout: 180_000 });
    await expect(statusBadge(page)).toHaveAttribute("data-status", "ready");
    const result = await testFunction(page, "name=Ada");
    await expect(result.locator("[data-testid=test-body]")).toHaveText("Hello, Ada!!");

    const files = page.getByRole("region", { name: "Files" });
    await files.locator("#files-compare").selectOption("1");
    await expect(files.locator("[data-testid=diff-summary]")).toHaveText("From v1 to v2: 1 changed, 1 added, 2 unchanged.");
    await expect(files.locator('.file-diff[data-path="lib/greeting.js"][data-change="changed"] .cm-changedLine, .file-diff[data-path="lib/greeting.js"] .cm-changedText').first()).toBeVisible();
    await expect(files.locator('.file-diff[data-path="data/note.txt"][data-change="added"]')).toBeVisible();
    await expect(files).toContainText("Unchanged: handler.js, package.json");
  });
});

/** A zip made with Python's zipfile: `entries` are [name, text] pairs, `links` [name, target]. */
function makeZip(file: string, entries: [string, string][], links: [string, string][] = []): string {
  const script = `
import json, sys, zipfile
out, entries, links = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for name, text in entries:
        z.writestr(name, text)
    for name, target in links:
        info = zipfile.ZipInfo(name)
        info.create_system = 3
        info.external_attr = 0o120777 << 16
        z.writestr(info, target)
`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  execFileSync("python3", ["-c", script, file, JSON.stringify(entries), JSON.stringify(links)]);
  return file;
}

test("a zip of a folder loads into the tabs, a link in a zip is refused, and leaving asks first", async ({ page, state }, info) => {
  await signIn(page, state.tenant);
  await open(page, "/functions/new");
  const folder = makeZip(info.outputPath("my-function.zip"), [
    ["my-function/handler.js", HANDLER],
    ["my-function/lib/greeting.js", GREETING],
  ]);
  const withLink = makeZip(info.outputPath("with-link.zip"), [["handler.js", HANDLER]], [["secrets", "/etc/passwd"]]);

  await test.step("the folder's files replace the tabs", async () => {
    await page.getByTestId("upload-zip").setInputFiles(folder);
    await expect(page.getByRole("status").filter({ hasText: "2 files loaded from my-function.zip" })).toBeVisible();
    await expect(page.getByRole("tablist", { name: "Files" }).getByRole("tab")).toHaveText(["handler.js", "lib/greeting.js"]);
    await expectEditorText(page, HANDLER);
    await fileTab(page, "lib/greeting.js").click();
    await expectEditorText(page, GREETING);
  });

  await test.step("a zip with a symbolic link is refused with the link's name; the tabs stay", async () => {
    await page.getByTestId("upload-zip").setInputFiles(withLink);
    await expect(page.getByTestId("upload-error")).toContainText('"secrets" is a symbolic link');
    await expect(page.getByRole("tablist", { name: "Files" }).getByRole("tab")).toHaveText(["handler.js", "lib/greeting.js"]);
  });

  await test.step("closing the tab with unsaved changes asks first", async () => {
    const dialog = page.waitForEvent("dialog");
    await page.close({ runBeforeUnload: true });
    const asked = await dialog;
    expect(asked.type()).toBe("beforeunload");
    await asked.dismiss();
    expect(page.isClosed()).toBe(false);
  });

  await test.step("following a link with unsaved changes asks first", async () => {
    const functionsLink = page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Functions" });
    const questions: string[] = [];
    page.once("dialog", (d) => {
      questions.push(d.message());
      void d.dismiss();
    });
    await functionsLink.click();
    await expect.poll(() => questions).toEqual(["You have unsaved changes. Leave this page and lose them?"]);
    await expect(page).toHaveURL(/\/functions\/new$/);
    page.once("dialog", (d) => void d.accept());
    await functionsLink.click();
    await expect(page).toHaveURL(/\/$/);
    await hydrated(page);
    await expect(page.getByRole("heading", { level: 1, name: "Functions" })).toBeVisible();
  });
});

test("before hydration the form is a textarea that creates the function", async ({ page, state, pageErrors }) => {
  const { org } = state.tenant;
  const name = `plain-${Date.now().toString(36)}`;
  await signIn(page, state.tenant);
  // The page as the server sends it, before the app's code takes over: the wasm never arrives.
  await page.route("**/pkg/*.wasm", (route) => route.abort());
  await page.goto("/functions/new");
  const code = page.locator("textarea#fn-code");
  await expect(code).toBeVisible();
  await expect(code).toHaveAttribute("name", "form[code]");
  await expect(code).toHaveValue(/module\.exports = async \(event, context\) =>/);
  await expect(page.locator(".cm-editor")).toHaveCount(0);
  await page.locator("#fn-name").fill(name);
  await code.fill("module.exports = async () => 'made before hydration';\n");
  await page.getByRole("button", { name: "Create function" }).click();
  await expect(page).toHaveURL(new RegExp(`/functions/${org}/${name}$`));
  await expect(page.getByRole("heading", { level: 1 })).toContainText(name);
  // The wasm held back is the pages' only error: the fixture fails the test on any other.
  const others = pageErrors.filter((e) => !e.includes("TypeError: Failed to fetch"));
  pageErrors.splice(0, pageErrors.length, ...others);
});
