use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    herald_shared::runtime::init_tracing(true);
    let config = herald_ingest::config()?;
    let sdk = herald_shared::runtime::lambda_sdk_config();
    let app = herald_ingest::app(&sdk, &config).await?;
    lambda_http::run(app).await
}
