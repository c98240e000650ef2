// The README's MLflow screenshots, taken the way a user sees the UI: headless Debian chromium driven by
// puppeteer-core (`npm ci --prefix tools/screenshots` once; nothing is downloaded but the library).
//
//   node tools/screenshots/mlflow_ui.js <url> <out.png> [--expand run,...] [--columns a,b,c] [--metric m] [--wait S]
//                                                       [--width PX]
//
// --expand unfolds those parent runs of a runs table (by name); --columns ticks those entries of its Columns menu
// (metrics and params by name); --metric puts that metric, alone, on the Compare page's parallel-coordinates plot
// (MLflow takes the first metric the runs share, here a system metric). The MLflow Assistant panel is closed
// first. Prints the page's visible text to stdout.
const puppeteer = require('puppeteer-core');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

(async () => {
  const [url, out, ...rest] = process.argv.slice(2);
  if (!url || !out) {
    console.error('usage: node mlflow_ui.js <url> <out.png> [--expand run,...] [--columns a,b] [--metric m] [--wait S]');
    process.exit(2);
  }
  const opt = (name, dflt) => (rest.includes(name) ? rest[rest.indexOf(name) + 1] : dflt);
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    defaultViewport: {width: Number(opt('--width', '1700')), height: 1000}});
  try {
    const page = await browser.newPage();
    await page.goto(url, {waitUntil: 'networkidle0', timeout: 90000});
    await sleep(1000 * Number(opt('--wait', '3')));
    for (const button of await page.$$('[aria-label="Close"]')) {  // the Assistant panel
      await button.click().catch(() => {});
    }
    for (const name of opt('--expand', '').split(',').filter(Boolean)) {
      const [button] = await page.$$(`xpath/.//div[contains(@class,"ag-cell-wrapper")][.//a//span[text()="${name}"]]` +
                                     '//button[contains(@data-component-id,"runnamecellrenderer")]');
      if (!button) throw new Error(`no parent run ${name} to unfold`);
      await button.click();
      await sleep(800);
    }
    const columns = opt('--columns', '').split(',').filter(Boolean);
    if (columns.length) {
      const [menu] = await page.$$('xpath/.//button[.//span[text()="Columns"]]');
      await menu.click();
      await sleep(1000);
      for (const name of columns) {
        const [entry] = await page.$$(`xpath/.//*[@role="dialog" or @role="menu" or @role="tree"]//*[text()="${name}"]`);
        if (!entry) throw new Error(`no column ${name} in the Columns menu`);
        await entry.click();
        await sleep(300);
      }
      await page.keyboard.press('Escape');
      await sleep(1000);
    }
    const metric = opt('--metric', '');
    if (metric) {
      const selects = await page.$$('input[role="combobox"]');  // Parameters, then Metrics
      await selects[1].click();
      await page.keyboard.press('Backspace');  // the metric MLflow chose
      await page.keyboard.type(metric);
      await sleep(500);
      await page.keyboard.press('Enter');
      await page.keyboard.press('Escape');
      await sleep(1500);
    }
    await page.screenshot({path: out});
    console.log(await page.evaluate(() => document.body.innerText));
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
