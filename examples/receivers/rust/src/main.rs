//! `HERALD_WEBHOOK_SECRET=whsec_… cargo run -p herald-example-receiver -- 8000`

#[tokio::main]
async fn main() {
    let secret = std::env::var("HERALD_WEBHOOK_SECRET")
        .expect("set HERALD_WEBHOOK_SECRET to the webhook's whsec_ secret");
    let port = std::env::args().nth(1).or(std::env::var("PORT").ok());
    let address = format!("127.0.0.1:{}", port.as_deref().unwrap_or("8000"));
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    let app = herald_example_receiver::app(secret);
    axum::serve(listener, app).await.unwrap();
}
