#[doc = r" The five largest entries."]
pub fn top5(theta: &[f32], z: &mut [f32]) {
    for i in largest(theta, 5) {
        z[i] = 1.0;
    }
}
#[doc = r" The five largest entries."]
pub type Top5 = ::imle::ImleLayer<Top5Solver>;
#[doc = "The solver of [`Top5`]: calls `top5`."]
#[derive(Clone, Copy, Debug, Default)]
pub struct Top5Solver;
impl ::imle::MapSolver for Top5Solver {
    type Scratch = <f32 as ::imle::macro_support::Element>::Scratch;
    fn name(&self) -> &str {
        "Top5"
    }
    fn solve(
        &self,
        theta: &[f32],
        _: &[usize],
        z: &mut [f32],
        scratch: &mut <f32 as ::imle::macro_support::Element>::Scratch,
    ) -> ::imle::macro_support::Result<()> {
        <f32 as ::imle::macro_support::Element>::solve("Top5", theta, z, scratch, |theta, z| {
            top5(theta, z)
        })
    }
}
impl ::imle::ConfiguredSolver for Top5Solver {
    const CONFIG: ::imle::ImleConfig = ::imle::ImleConfig {
        lambda: 10.0,
        samples: 10,
        ..::imle::ImleConfig::new(::imle::Noise::SumOfGamma { k: 5.0, terms: 10 })
    };
}
