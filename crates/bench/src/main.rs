//! `bench`: runs the benchmark and writes `report.json` and `report.md` under `--out`.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let options = bench::suite::Options::parse();
    // One thread for the whole generator: it shares the cores with the provider it measures.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(bench::suite::run(&options))?;
    let json = options.out.join("report.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
    let markdown = options.out.join("report.md");
    std::fs::write(&markdown, report.markdown())?;
    println!("{}", report.human());
    println!("wrote {} and {}", json.display(), markdown.display());
    Ok(())
}
