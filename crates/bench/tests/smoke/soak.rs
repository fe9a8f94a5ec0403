//! The soak, for a few seconds against the real provider started in-process with the soak's
//! lifetimes: it samples throughput, memory and rows, and its report renders.

use std::rc::Rc;

use bench::flows::{Ctx, Target};
use bench::soak::{self, PROVIDER_EXPIRY_MARGIN_SECS, SoakSettings};
use testkit::TestProvider;

#[tokio::test]
async fn a_short_soak_samples_throughput_memory_and_rows() -> anyhow::Result<()> {
    assert_eq!(
        PROVIDER_EXPIRY_MARGIN_SECS,
        provider::storage::sweep::EXPIRY_MARGIN_SECS,
        "the soak's row bounds assume the provider's sweep margin"
    );
    let settings = SoakSettings::new(3.0, 0.5, 2);
    let provider = TestProvider::start_with(|s| {
        s.code_ttl_secs = settings.code_ttl_secs;
        s.access_token_ttl_secs = settings.access_token_ttl_secs;
        s.refresh_token_ttl_secs = settings.refresh_token_ttl_secs;
        s.sweep_interval_secs = settings.sweep_interval_secs;
    })
    .await?;
    let env = settings.provider_env();
    assert!(env.contains(&("PROVIDER_SWEEP_INTERVAL_SECS".into(), "2".into())));
    let target = Target {
        addr: ([127, 0, 0, 1], provider.port).into(),
        issuer: provider.issuer.clone(),
        client_id: provider.client_id.clone(),
        client_secret: provider.client_secret.clone(),
        redirect_uri: provider.redirect_uri.clone(),
        username: provider.user.username.clone(),
        password: provider.user.password.clone(),
        scope: "openid profile email offline_access".into(),
    };
    let ctx = Rc::new(Ctx::discover(target).await?);
    let pid = std::process::id();
    let report = soak::run(&ctx, &provider.database_path, Some(pid), &settings).await?;

    assert_eq!(report.errors, 0, "{:?}", report.error_samples);
    assert!(report.operations > 0);
    assert!(report.samples.len() >= 6, "{:?}", report.samples);
    assert_eq!(report.samples.last().unwrap().operations, report.operations);
    for sample in &report.samples {
        assert!(sample.rss_kib.is_some_and(|k| k > 0), "{sample:?}");
        assert!(sample.rows.is_some(), "{sample:?}");
    }
    // Nothing has expired past the margin within seconds: every flow's rows are still there,
    // one of each kind per flow (the logins that prepared the agents included).
    let rows = report.samples.last().unwrap().rows.unwrap();
    let flows = i64::try_from(report.operations)? + 2;
    assert_eq!(
        (
            rows.authorization_codes,
            rows.access_tokens,
            rows.refresh_tokens,
            rows.grants
        ),
        (flows, flows, flows, flows)
    );
    assert_eq!(report.max_rows, Some(rows));
    assert!(report.first_window_per_sec > 0.0 && report.last_window_per_sec > 0.0);
    assert!(
        (report.window_secs - 1.0).abs() < 0.1,
        "{}",
        report.window_secs
    );
    assert_eq!(report.checks.len(), 3);
    assert_eq!(report.checks[0].pass, Some(true), "{:?}", report.checks[0]);
    let markdown = report.markdown();
    assert!(markdown.contains("| Time s | Flows/s | Provider RSS MiB |"));
    assert_eq!(
        markdown.lines().filter(|l| l.starts_with("| ")).count(),
        report.samples.len() + 1
    );
    serde_json::to_string(&report)?;
    Ok(())
}
