//! Sampler schedules against known SD 1.x / A1111 values.

use rotograph_sd::schedule::*;

fn close(a: f32, b: f64, tol: f64) -> bool {
    (f64::from(a) - b).abs() <= tol
}

#[test]
fn model_sigma_range() {
    let ac = alphas_cumprod();
    assert_eq!(ac.len(), 1000);
    assert!(close(ac[0], 1.0 - 0.00085, 1e-7), "{}", ac[0]);
    assert!(close(ac[999], 0.004_660_1, 1e-6), "{}", ac[999]);
    assert!(close(sigma_max(), 14.6146, 1e-3), "{}", sigma_max());
    assert!(close(sigma_min(), 0.0292, 1e-4), "{}", sigma_min());
    let s = model_sigmas();
    assert!(s.windows(2).all(|w| w[0] < w[1]));
}

fn assert_decreasing_to_zero(s: &[f32], steps: usize) {
    assert_eq!(s.len(), steps + 1);
    assert_eq!(*s.last().unwrap(), 0.0);
    assert!(s.windows(2).all(|w| w[0] > w[1]), "{s:?}");
}

#[test]
fn automatic_schedule() {
    let s = discrete_sigmas(20);
    assert_decreasing_to_zero(&s, 20);
    assert!(close(s[0], f64::from(sigma_max()), 1e-5));
    assert!(close(s[19], f64::from(sigma_min()), 1e-6));
    // t = 999 - 999 * i / 19; t_1 = 946.42...: log-linear between timesteps 946 and 947.
    let ms = model_sigmas();
    let t1 = 999.0 - 999.0 / 19.0;
    let w = t1 - 946.0;
    let want = ((1.0 - w) * f64::from(ms[946]).ln() + w * f64::from(ms[947]).ln()).exp();
    assert!(close(s[1], want, 1e-4), "{} vs {want}", s[1]);
    // The values k-diffusion prints for SD 1.5, 20 steps (4 decimals).
    let known = [
        14.6146, 10.7468, 8.0815, 6.2049, 4.8557, 3.8654, 3.1238, 2.5572,
    ];
    for (i, k) in known.iter().enumerate() {
        assert!(close(s[i], *k, 6e-4), "sigma[{i}] = {} vs {k}", s[i]);
    }
    // exp(ln(sigma)) as k-diffusion's t_to_sigma: equal up to float32 rounding.
    let one = discrete_sigmas(1);
    assert_eq!(one.len(), 2);
    assert!(close(one[0], f64::from(sigma_max()), 1e-5) && one[1] == 0.0);
}

#[test]
fn karras_schedule() {
    let (lo, hi) = (sigma_min(), sigma_max());
    let s = karras_sigmas(20, lo, hi, 7.0);
    assert_decreasing_to_zero(&s, 20);
    assert!(close(s[0], f64::from(hi), 1e-4), "{}", s[0]);
    assert!(close(s[19], f64::from(lo), 1e-6), "{}", s[19]);
    // Every value against the formula evaluated in float64.
    let (a, b) = (f64::from(hi).powf(1.0 / 7.0), f64::from(lo).powf(1.0 / 7.0));
    for (i, &v) in s[..20].iter().enumerate() {
        let want = (a + i as f64 / 19.0 * (b - a)).powf(7.0);
        assert!(
            (f64::from(v) - want).abs() <= 1e-5 * want.max(1.0),
            "{i}: {v} vs {want}"
        );
    }
    // A1111 "DPM++ 2M Karras" uses exactly this.
    let k: Sampler = "DPM++ 2M Karras".parse().unwrap();
    assert_eq!(k.sigmas(20).unwrap(), s);
    // Karras differs from automatic in the middle.
    let e: Sampler = "Euler".parse().unwrap();
    assert!((e.sigmas(20).unwrap()[10] - s[10]).abs() > 0.1);
}

#[test]
fn lcm_schedule() {
    let s = lcm_sigmas(4);
    assert_decreasing_to_zero(&s, 4);
    let ms = model_sigmas();
    assert!(close(s[0], f64::from(ms[999]), 1e-5));
    // Last real sigma is LCM's first original timestep (19), not timestep 0.
    assert!(
        close(s[3], f64::from(ms[19]), 1e-5),
        "{} vs {}",
        s[3],
        ms[19]
    );
}

#[test]
fn ddim_timesteps_as_a1111() {
    let t = ddim_timesteps(20).unwrap();
    assert_eq!(t.len(), 20);
    assert_eq!(t[0], 1);
    assert_eq!(t[1], 51);
    assert_eq!(t[19], 951);
    // 1000 // 30 = 33: range(0, 1000, 33) has 31 entries.
    let t = ddim_timesteps(30).unwrap();
    assert_eq!(t.len(), 31);
    assert_eq!(*t.last().unwrap(), 991);
    assert_eq!(ddim_timesteps(1000).unwrap().last(), Some(&999));
    assert!(ddim_timesteps(0).is_err());
    assert!(ddim_timesteps(1001).is_err());
}

#[test]
fn sampler_names() {
    for (name, kind, sched) in [
        ("Euler a", SamplerKind::EulerA, Scheduler::Automatic),
        ("euler A", SamplerKind::EulerA, Scheduler::Automatic),
        ("EULER", SamplerKind::Euler, Scheduler::Automatic),
        ("ddim", SamplerKind::Ddim, Scheduler::Automatic),
        ("DPM++ 2M", SamplerKind::DpmPp2M, Scheduler::Automatic),
        (" dpm++ 2m karras ", SamplerKind::DpmPp2M, Scheduler::Karras),
        ("DPM++ SDE Karras", SamplerKind::DpmPpSde, Scheduler::Karras),
        ("LCM", SamplerKind::Lcm, Scheduler::Automatic),
        ("k_euler_a", SamplerKind::EulerA, Scheduler::Automatic),
    ] {
        let s: Sampler = name.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((s.kind, s.scheduler), (kind, sched), "{name}");
    }
    let s: Sampler = "dpm++ 2m karras".parse().unwrap();
    assert_eq!(s.to_string(), "DPM++ 2M Karras");
    let err = "Heun++".parse::<Sampler>().unwrap_err().to_string();
    for n in ["Euler a", "DDIM", "DPM++ 2M Karras", "LCM"] {
        assert!(err.contains(n), "{err}");
    }
    assert!(err.contains("Heun++"));
}

#[test]
fn img2img_step_counts() {
    // (steps, denoise, t_enc, steps run) as A1111 gives them by default.
    for (steps, d, t_enc, run) in [
        (20, 0.75, 15, 16),
        (20, 1.0, 19, 20),
        (20, 0.0, 0, 1),
        (10, 0.3, 3, 4),     // 0.3 * 10 = 3.0000000000000004
        (100, 0.29, 28, 29), // 0.29 * 100 = 28.999999999999996
        (30, 0.5, 15, 16),
        (50, 0.35, 17, 18),
    ] {
        assert_eq!(
            img2img_steps(steps, d, false).unwrap(),
            (steps, t_enc),
            "{steps} {d}"
        );
        let euler: Sampler = "Euler a".parse().unwrap();
        let plan = euler.img2img(steps, d).unwrap();
        assert_eq!(plan.t_enc, t_enc);
        assert_eq!(plan.steps_run(), run, "{steps} {d}");
        let full = discrete_sigmas(steps);
        match &plan.plan {
            Img2ImgPlan::Sigmas(s) => {
                assert_eq!(s.as_slice(), &full[steps - t_enc - 1..]);
                assert_eq!(s.len(), t_enc + 2);
            }
            other => panic!("{other:?}"),
        }
    }
    // 20 steps at 0.75 start from the 5th sigma of the 20-step schedule.
    let plan = "Euler"
        .parse::<Sampler>()
        .unwrap()
        .img2img(20, 0.75)
        .unwrap();
    let Img2ImgPlan::Sigmas(s) = plan.plan else {
        panic!()
    };
    assert_eq!(s[0], discrete_sigmas(20)[4]);
    // "Fix steps": schedule stretched to 40, t_enc = 19, 20 steps run.
    assert_eq!(img2img_steps(20, 0.5, true).unwrap(), (40, 19));
    let plan = "Euler a"
        .parse::<Sampler>()
        .unwrap()
        .img2img_with(20, 0.5, true)
        .unwrap();
    assert_eq!(plan.steps_run(), 20);
    // Bad input is an error, not a panic.
    assert!(img2img_steps(0, 0.5, false).is_err());
    assert!(img2img_steps(20, 1.5, false).is_err());
    assert!(img2img_steps(20, f64::NAN, false).is_err());
}

#[test]
fn img2img_ddim() {
    let ddim: Sampler = "DDIM".parse().unwrap();
    let plan = ddim.img2img(20, 0.75).unwrap();
    match plan.plan {
        Img2ImgPlan::Timesteps {
            ref timesteps,
            noise_timestep,
        } => {
            assert_eq!(timesteps.len(), 15);
            assert_eq!(timesteps[14], 701);
            assert_eq!(noise_timestep, 751);
        }
        ref other => panic!("{other:?}"),
    }
    assert_eq!(plan.steps_run(), 14);
}
