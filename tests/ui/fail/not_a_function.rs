use imle::imle_layer;

#[imle_layer(noise = "gumbel")]
struct Top1;

fn main() {
    let _ = Top1;
}
