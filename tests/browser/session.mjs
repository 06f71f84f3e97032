// Plays a person at a browser: opens the relay's page in Debian's Chromium,
// types the computer ID, trusts the new host key, types the TOTP code (from
// oathtool, with the test's secret), the host password and the Windows logon,
// all with the keyboard, then screenshots the session, presses keys and clicks.
// Driven by tests/tests/browser.rs, which checks the screenshot and the keys
// the test desktop received. Every wait is bounded.
//
// Environment: THIN_URL, THIN_SPKI (the web certificate's key hash, the only
// certificate error Chromium forgives), THIN_LOCALE, THIN_ID,
// THIN_TOTP_SECRET, THIN_HOST_PASSWORD, THIN_RDP_USER, THIN_RDP_PASSWORD,
// THIN_OUT (folder for screenshots), THIN_DONE (file the test creates when
// it has seen the keys).

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

// Step names in the tab title (ui/src/i18n.rs), per language.
const STEPS = {
  ja: {
    list: "thin リモートデスクトップ",
    hostKey: "このコンピューターへの初めての接続",
    otp: "ワンタイムパスワード",
    hostPassword: "ホストパスワード",
    logon: "Windowsログオン",
  },
  en: {
    list: "thin remote desktop",
    hostKey: "First connection to this computer",
    otp: "One-time password",
    hostPassword: "Host password",
    logon: "Windows logon",
  },
};

const locale = env("THIN_LOCALE");
const steps = STEPS[locale.slice(0, 2)];
const id = env("THIN_ID");
const out = env("THIN_OUT");

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  timeout: 60_000,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    `--ignore-certificate-errors-spki-list=${env("THIN_SPKI")}`,
  ],
});

let page;
try {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 960 },
    deviceScaleFactor: 1,
    locale,
  });
  // As a person allows it when the site first asks.
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  page = await context.newPage();
  page.on("console", (m) => console.log(`console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console.log(`pageerror: ${e}`));
  page.on("response", (r) => {
    if (r.status() >= 400) console.log(`http ${r.status()}: ${r.url()}`);
  });
  page.on("requestfailed", (r) => console.log(`request failed: ${r.url()} ${r.failure()?.errorText}`));

  const started = Date.now();
  await page.goto(env("THIN_URL"), { timeout: 30_000 });
  // The loading screen goes once the app runs.
  await page.waitForSelector("#loading", { state: "detached", timeout: 60_000 });
  console.log(`loaded_ms=${Date.now() - started}`);

  // A function, not a string: the page's Content-Security-Policy forbids
  // evaluating strings.
  const waitTitle = async (what, [whole, text]) => {
    try {
      await page.waitForFunction(
        ([whole, text]) => (whole ? document.title === text : document.title.includes(text)),
        [whole, text],
        { timeout: 30_000, polling: 50 },
      );
    } catch (e) {
      const title = JSON.stringify(await page.title());
      throw new Error(`waited for ${what}; the title is ${title} (${e.message.split("\n")[0]})`);
    }
    console.log(`step: ${await page.title()}`);
    // Let the new screen settle and take the keyboard.
    await page.waitForTimeout(300);
  };
  const titleHas = (text) => waitTitle(text, [false, text]);
  const type = (text) => page.keyboard.type(text, { delay: 15 });

  await titleHas(steps.list);
  await page.screenshot({ path: join(out, `browser-${locale}-list.png`) });
  if (!process.env.THIN_ONLY_LIST) {
    await connectAndType(page, titleHas, waitTitle, type);
  }
  console.log("finished");
} catch (e) {
  console.log(`failed: ${e.message}`);
  if (page) {
    await page.screenshot({ path: join(out, `browser-${locale}-failure.png`) }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  // Playwright gave the browser a fresh temporary profile and removes it.
  await browser.close();
}

async function connectAndType(page, titleHas, waitTitle, type) {
  // The quick-connect field has the keyboard from the start.
  await type(id);
  await page.keyboard.press("Enter");

  await titleHas(steps.hostKey);
  await page.keyboard.press("Enter");

  await titleHas(steps.otp);
  const otp = execFileSync("oathtool", ["--totp", "-b", env("THIN_TOTP_SECRET")])
    .toString()
    .trim();
  await type(otp);
  await page.keyboard.press("Enter");

  await titleHas(steps.hostPassword);
  await type(env("THIN_HOST_PASSWORD"));
  await page.keyboard.press("Enter");

  await titleHas(steps.logon);
  await type(env("THIN_RDP_USER"));
  await page.keyboard.press("Tab");
  await type(env("THIN_RDP_PASSWORD"));
  await page.keyboard.press("Enter");

  // In the session the title is just the computer ID.
  await waitTitle("the session", [true, `${id} — thin`]);
  // The picture arrives in tiles; the test looks for it in these shots.
  for (let i = 0; i < 10; i++) {
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(out, `browser-${locale}-session-${i}.png`) });
    console.log(`screenshot ${i}`);
  }

  // Keys for the remote PC: a character and a key without one; then a
  // click on the remote picture.
  await page.keyboard.type("a");
  await page.keyboard.press("ArrowLeft");
  await page.mouse.click(300, 200);
  console.log("keys and click sent");

  // The clipboard: the office PC's text came to this browser's clipboard as
  // the session began; text on this browser's clipboard goes to the office
  // PC with Ctrl+V.
  const fromOffice = await page.evaluate(() => navigator.clipboard.readText());
  console.log(`browser clipboard: ${JSON.stringify(fromOffice)}`);
  await page.evaluate((text) => navigator.clipboard.writeText(text), env("THIN_PASTE"));
  await page.keyboard.press("Control+V");
  console.log("pasted");

  // The page grows (a larger browser window): the remote desktop follows.
  await page.setViewportSize({ width: 1500, height: 1000 });
  console.log("page resized");
  for (let i = 0; i < 8; i++) {
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(out, `browser-${locale}-resized-${i}.png`) });
    console.log(`resized screenshot ${i}`);
  }

  const done = env("THIN_DONE");
  for (let i = 0; i < 600 && !existsSync(done); i++) {
    await page.waitForTimeout(100);
  }
}
