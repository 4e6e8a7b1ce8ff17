//! The k-diffusion samplers against analytic denoisers.

use candle_core::{Device, Tensor};
use rotograph_sd::img2img::{sample, sample_ddim};
use rotograph_sd::noise::NvRng;
use rotograph_sd::schedule::{
    alphas_cumprod, ddim_timesteps, discrete_sigmas, karras_sigmas, sigma_max, sigma_min,
    SamplerKind,
};

fn t(v: &[f32]) -> Tensor {
    Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap()
}

fn vals(x: &Tensor) -> Vec<f32> {
    x.to_vec1::<f32>().unwrap()
}

/// Runs `kind` with `denoise` from `x` at `sigmas[0]`; also returns the step-noise draws.
fn run(
    kind: SamplerKind,
    sigmas: &[f32],
    x: &[f32],
    denoise: impl Fn(&Tensor, f32) -> Tensor,
) -> (Vec<f32>, usize) {
    let mut draws = 0;
    let mut den = |x: &Tensor, s: f32| Ok(denoise(x, s));
    let mut noise = || {
        draws += 1;
        Ok(t(&[0.5, -0.5, 0.25][..x.len()]))
    };
    let out = sample(kind, sigmas, t(x), &mut den, &mut noise).unwrap();
    (vals(&out), draws)
}

#[test]
fn an_oracle_denoiser_lands_on_its_target() {
    let target = [0.3f32, -1.2, 0.7];
    let sigmas = discrete_sigmas(10);
    for kind in [
        SamplerKind::Euler,
        SamplerKind::EulerA,
        SamplerKind::DpmPp2M,
        SamplerKind::DpmPpSde,
        SamplerKind::Lcm,
    ] {
        let (out, draws) = run(kind, &sigmas, &[5.0, -3.0, 9.0], |_, _| t(&target));
        for (o, e) in out.iter().zip(target) {
            assert!((o - e).abs() < 1e-5, "{kind:?}: {out:?}");
        }
        // Ancestral samplers draw before every step but the last; DPM++ SDE draws two.
        let expected_draws = match kind {
            SamplerKind::EulerA | SamplerKind::Lcm => 9,
            SamplerKind::DpmPpSde => 18,
            _ => 0,
        };
        assert_eq!(draws, expected_draws, "{kind:?}");
    }
}

/// Unit-variance Gaussian data: the ideal denoiser is `x / (1 + sigma^2)` and the probability
/// flow ODE has the exact solution `x(0) = x(s0) / sqrt(1 + s0^2)`. Euler's error halves when
/// the steps double (first order); DPM++ 2M's shrinks about 3x at these sizes (second order
/// asymptotically), and is smaller.
#[test]
fn deterministic_samplers_converge_to_the_ode_solution() {
    let err = |kind, steps| {
        let sigmas = discrete_sigmas(steps);
        let s0 = sigmas[0];
        let x0 = [s0, -0.5 * s0, 2.0 * s0];
        let den = |x: &Tensor, s: f32| (x / (1.0 + (s as f64).powi(2))).unwrap();
        let (out, _) = run(kind, &sigmas, &x0, den);
        out.iter()
            .zip(&x0)
            .map(|(o, x)| {
                let e = x / (1.0 + s0 * s0).sqrt();
                ((o - e) / e).abs()
            })
            .fold(0f32, f32::max)
    };
    let (e40, e80) = (err(SamplerKind::Euler, 40), err(SamplerKind::Euler, 80));
    let (d40, d80) = (err(SamplerKind::DpmPp2M, 40), err(SamplerKind::DpmPp2M, 80));
    assert!(
        e40 < 0.05 && (1.8..2.2).contains(&(e40 / e80)),
        "Euler {e40} {e80}"
    );
    assert!(
        d40 < e40 && d80 < e80,
        "DPM++ 2M {d40} {d80} vs Euler {e40} {e80}"
    );
    assert!(d40 / d80 > 2.8, "DPM++ 2M order: {d40} {d80}");
}

/// The noise prediction of an oracle that knows the clean latent `x0`, at timestep `t`.
fn oracle_eps(x: &Tensor, t: u32, x0: &[f32]) -> Tensor {
    let a = alphas_cumprod()[t as usize] as f64;
    ((x - (t_of(x0) * a.sqrt()).unwrap()).unwrap() / (1.0 - a).sqrt()).unwrap()
}

fn t_of(v: &[f32]) -> Tensor {
    t(v)
}

/// DDIM with an oracle keeps the initial noise direction: from `x = sqrt(a) x0 + sqrt(1-a) e`
/// at the last timestep it must end at `sqrt(a0) x0 + sqrt(1-a0) e` at the first (A1111 stops
/// there), making one model call and one noise draw per step.
#[test]
fn ddim_with_an_oracle_follows_the_noise_direction() {
    let ts = ddim_timesteps(10).unwrap();
    let ac = alphas_cumprod();
    let (x0, e) = ([0.3f32, -1.2, 0.7], [1.0f32, -0.5, 2.0]);
    let mix = |t: u32| -> Vec<f32> {
        let a = ac[t as usize];
        x0.iter()
            .zip(e)
            .map(|(x, e)| a.sqrt() * x + (1.0 - a).sqrt() * e)
            .collect()
    };
    let (mut calls, mut draws) = (0, 0);
    let mut eps = |x: &Tensor, tt: u32| {
        calls += 1;
        Ok(oracle_eps(x, tt, &x0))
    };
    let mut noise = || {
        draws += 1;
        Ok(t(&[0.0; 3]))
    };
    let last = *ts.last().unwrap();
    let out = sample_ddim(&ts, t(&mix(last)), &mut eps, &mut noise).unwrap();
    let want = mix(ts[0]);
    for (o, w) in vals(&out).iter().zip(&want) {
        assert!((o - w).abs() < 1e-5, "{out:?} vs {want:?}");
    }
    assert_eq!((calls, draws), (ts.len() - 1, ts.len() - 1));
}

/// Unit-variance Gaussian data in the variance-preserving form DDIM works in: the exact
/// probability-flow solution keeps `x` unchanged, and the ideal noise prediction is
/// `sqrt(1 - a) x`. DDIM is first order: its error halves when the steps double.
#[test]
fn ddim_converges_to_the_ode_solution_at_first_order() {
    let err = |steps| {
        let ts = ddim_timesteps(steps).unwrap();
        let ac = alphas_cumprod();
        let mut eps =
            |x: &Tensor, tt: u32| Ok((x * (1.0 - ac[tt as usize] as f64).sqrt()).unwrap());
        let mut noise = || Ok(t(&[0.0; 3]));
        let x = [1.0f32, -0.5, 2.0];
        let out = sample_ddim(&ts, t(&x), &mut eps, &mut noise).unwrap();
        vals(&out)
            .iter()
            .zip(x)
            .map(|(o, x)| ((o - x) / x).abs())
            .fold(0f32, f32::max)
    };
    let (e20, e40) = (err(20), err(40));
    assert!(e20 > 0.0 && e20 < 0.1, "DDIM error {e20}");
    assert!((1.7..2.3).contains(&(e20 / e40)), "DDIM order: {e20} {e40}");
}

/// The variance left after sampling unit-variance Gaussian data with its ideal denoiser
/// `x / (1 + sigma^2)` and standard normal step noise, from samples of the noised marginal
/// (variance `1 + sigma0^2`), over 20000 independent coordinates (standard error about 1%).
/// Starts a third of the way down the schedule, as img2img does.
fn sde_variance(kind: SamplerKind, sigmas: &[f32]) -> f64 {
    let n = 20000;
    let sigmas = &sigmas[sigmas.len() / 3..];
    let s0 = sigmas[0] as f64;
    let mut rng = NvRng::new(99);
    let x: Vec<f32> = rng
        .randn(n)
        .into_iter()
        .map(|z| z * (1.0 + s0 * s0).sqrt() as f32)
        .collect();
    let mut den = |x: &Tensor, s: f32| Ok((x / (1.0 + (s as f64).powi(2))).unwrap());
    let mut noise = || Ok(Tensor::from_vec(rng.randn(n), n, &Device::Cpu).unwrap());
    let out = vals(&sample(kind, sigmas, t(&x), &mut den, &mut noise).unwrap());
    let mean = out.iter().map(|v| *v as f64).sum::<f64>() / n as f64;
    assert!(mean.abs() < 0.03, "{kind:?}: mean {mean}");
    out.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n as f64
}

/// A correct SDE sampler turns the noised marginal into the data distribution as its steps
/// shrink. DPM++ SDE's variance (0.76 at 6 Karras steps, 0.98 at 24 by the exact recursion)
/// converges much faster than Euler a's (0.77 at 24), which is only first order.
#[test]
fn sde_samplers_converge_to_the_data_distribution() {
    let karras = |n| karras_sigmas(n, sigma_min(), sigma_max(), 7.0);
    let sde6 = sde_variance(SamplerKind::DpmPpSde, &karras(6));
    let sde24 = sde_variance(SamplerKind::DpmPpSde, &karras(24));
    let ea24 = sde_variance(SamplerKind::EulerA, &karras(24));
    let ea96 = sde_variance(SamplerKind::EulerA, &karras(96));
    assert!((sde24 - 1.0).abs() < 0.04, "DPM++ SDE at 24 steps: {sde24}");
    assert!(
        (sde24 - 1.0).abs() * 3.0 < (sde6 - 1.0).abs(),
        "DPM++ SDE: {sde6} at 6 steps, {sde24} at 24"
    );
    assert!(
        (ea24 - 1.0).abs() > 2.0 * (sde24 - 1.0).abs(),
        "Euler a {ea24} vs DPM++ SDE {sde24}"
    );
    assert!(
        (ea96 - 1.0).abs() < (ea24 - 1.0).abs() / 2.5,
        "Euler a: {ea24} {ea96}"
    );
}

#[test]
fn timestep_samplers_are_rejected() {
    let mut den = |x: &Tensor, _: f32| Ok(x.clone());
    let mut noise = || Ok(t(&[0.0]));
    let r = sample(
        SamplerKind::Ddim,
        &[1.0, 0.0],
        t(&[1.0]),
        &mut den,
        &mut noise,
    );
    assert!(r.is_err());
}
