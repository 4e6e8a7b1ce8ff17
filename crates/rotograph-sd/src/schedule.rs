//! Sampler schedules as Automatic1111 (through k-diffusion) builds them for Stable Diffusion
//! 1.x: the scaled-linear beta schedule, the discrete model's sigmas, the "automatic" and Karras
//! discretizations, DDIM timesteps, and where img2img enters a schedule.
//!
//! Sources (facts only, no code taken): CompVis `ldm` `make_beta_schedule("linear")`
//! (`linspace(sqrt(0.00085), sqrt(0.012), 1000) ** 2` in float64, `alphas_cumprod` kept as a
//! float32 buffer); k-diffusion `external.py` (`DiscreteSchedule.get_sigmas` / `t_to_sigma`,
//! sigmas `((1 - ac) / ac) ** 0.5`) and `sampling.py` (`get_sigmas_karras`, `append_zero`);
//! A1111 `sd_samplers_kdiffusion.py` (sampler table, `get_sigmas`, `sample_img2img`),
//! `sd_samplers_common.py` (`setup_img2img_steps`), `sd_samplers_timesteps.py` (DDIM) and
//! `sd_samplers_lcm.py` (LCM's 50-step table). Sampler names follow A1111 up to 1.8, where
//! "DPM++ 2M" means the automatic (discrete) schedule.
//!
//! Arithmetic mirrors torch's float32 where A1111 works on float32 tensors.

use std::fmt;
use std::str::FromStr;

pub use crate::noise::SdError;

/// Training timesteps of SD's diffusion schedule.
pub const NUM_TRAIN_TIMESTEPS: usize = 1000;
/// First beta of SD's scaled-linear schedule.
pub const BETA_START: f64 = 0.00085;
/// Last beta of SD's scaled-linear schedule.
pub const BETA_END: f64 = 0.012;
/// Karras rho used by A1111 (k-diffusion's default).
pub const KARRAS_RHO: f64 = 7.0;
/// Timesteps of LCM's original schedule (A1111 `sd_samplers_lcm.py`).
const LCM_ORIGINAL_STEPS: usize = 50;

/// `torch.linspace(start, end, n)` in float32: the first half counts up from `start`, the second
/// down from `end`, both with `step = (end - start) / (n - 1)`.
fn linspace_f32(start: f32, end: f32, n: usize) -> Vec<f32> {
    match n {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (end - start) / (n - 1) as f32;
            let half = n / 2;
            (0..n)
                .map(|i| {
                    if i < half {
                        start + step * i as f32
                    } else {
                        end - step * (n - 1 - i) as f32
                    }
                })
                .collect()
        }
    }
}

/// Cumulative products of `1 - beta` for the 1000 training timesteps, computed in float64 and
/// stored as float32 as ldm's model buffer (and A1111 >= 1.8 by default) holds them.
pub fn alphas_cumprod() -> Vec<f32> {
    let n = NUM_TRAIN_TIMESTEPS;
    let (a, b) = (BETA_START.sqrt(), BETA_END.sqrt());
    let step = (b - a) / (n - 1) as f64;
    let mut prod = 1f64;
    (0..n)
        .map(|i| {
            let s = if i < n / 2 {
                a + step * i as f64
            } else {
                b - step * (n - 1 - i) as f64
            };
            prod *= 1.0 - s * s;
            prod as f32
        })
        .collect()
}

/// Sigmas `sqrt((1 - ac) / ac)` of a table of `alphas_cumprod` (ascending with the timestep).
fn sigmas_of(alphas_cumprod: &[f32]) -> Vec<f32> {
    alphas_cumprod
        .iter()
        .map(|&a| ((1.0 - a) / a).sqrt())
        .collect()
}

/// The discrete model's sigma for each training timestep (index = timestep, ascending), as
/// k-diffusion's `CompVisDenoiser.sigmas`.
pub fn model_sigmas() -> Vec<f32> {
    sigmas_of(&alphas_cumprod())
}

/// The smallest model sigma (timestep 0), about 0.0292 for SD 1.x.
pub fn sigma_min() -> f32 {
    model_sigmas()[0]
}

/// The largest model sigma (timestep 999), about 14.6146 for SD 1.x.
pub fn sigma_max() -> f32 {
    model_sigmas()[NUM_TRAIN_TIMESTEPS - 1]
}

/// k-diffusion's `DiscreteSchedule.get_sigmas(n)` over a sigma table: `t` linearly spaced from
/// the last index to 0 over `n` values, sigma interpolated linearly in log space between the
/// neighbouring table entries, then a final 0 appended (`n + 1` values).
fn discrete_get_sigmas(table: &[f32], n: usize) -> Vec<f32> {
    let log_sigmas: Vec<f32> = table.iter().map(|s| s.ln()).collect();
    let t_max = (table.len().saturating_sub(1)) as f32;
    let mut out: Vec<f32> = linspace_f32(t_max, 0.0, n)
        .into_iter()
        .map(|t| {
            let (lo, hi) = (t.floor() as usize, t.ceil() as usize);
            let w = t.fract();
            ((1.0 - w) * log_sigmas[lo] + w * log_sigmas[hi]).exp()
        })
        .collect();
    out.push(0.0);
    out
}

/// The "automatic" schedule A1111 gives Euler, Euler a, DPM++ 2M, ... (k-diffusion's
/// `get_sigmas` of the discrete denoiser): `steps + 1` sigmas from `sigma_max` down to
/// `sigma_min`, then 0.
pub fn discrete_sigmas(steps: usize) -> Vec<f32> {
    discrete_get_sigmas(&model_sigmas(), steps)
}

/// Karras et al. (2022) sigmas (k-diffusion `get_sigmas_karras`): `steps` values
/// `(max^(1/rho) + ramp * (min^(1/rho) - max^(1/rho)))^rho` with `ramp` in `[0, 1]`, then 0.
/// A1111 passes the model's `sigma_min` / `sigma_max` and `rho = 7`.
pub fn karras_sigmas(steps: usize, sigma_min: f32, sigma_max: f32, rho: f64) -> Vec<f32> {
    // A1111 takes sigma_min/max as Python floats (`.item()`), so the rho-th roots are float64;
    // the ramp arithmetic runs on a float32 tensor.
    let min_inv = f64::from(sigma_min).powf(1.0 / rho);
    let max_inv = f64::from(sigma_max).powf(1.0 / rho);
    let (max_f, diff_f) = (max_inv as f32, (min_inv - max_inv) as f32);
    let mut out: Vec<f32> = linspace_f32(0.0, 1.0, steps)
        .into_iter()
        .map(|r| (max_f + r * diff_f).powf(rho as f32))
        .collect();
    out.push(0.0);
    out
}

/// LCM's automatic schedule (A1111 `LCMCompVisDenoiser.get_sigmas`): the discrete
/// interpolation over LCM's 50 original timesteps (19, 39, ..., 999) instead of all 1000.
pub fn lcm_sigmas(steps: usize) -> Vec<f32> {
    let ac = alphas_cumprod();
    let skip = NUM_TRAIN_TIMESTEPS / LCM_ORIGINAL_STEPS;
    let valid: Vec<f32> = (0..LCM_ORIGINAL_STEPS)
        .map(|j| ac[NUM_TRAIN_TIMESTEPS - 1 - (LCM_ORIGINAL_STEPS - 1 - j) * skip])
        .collect();
    discrete_get_sigmas(&sigmas_of(&valid), steps)
}

/// DDIM timesteps as A1111's `CompVisSampler.get_timesteps`: `range(0, 1000, 1000 // steps)`
/// plus one, clipped to 999 (ascending). When 1000 is not a multiple of `steps` this yields
/// more than `steps` values (e.g. 31 for 30 steps), as A1111 does. `steps` must be 1..=1000.
pub fn ddim_timesteps(steps: usize) -> Result<Vec<u32>, SdError> {
    if steps == 0 || steps > NUM_TRAIN_TIMESTEPS {
        return Err(SdError::Setting {
            what: "DDIM steps",
            why: format!("{steps} is not in 1..={NUM_TRAIN_TIMESTEPS}"),
        });
    }
    let stride = NUM_TRAIN_TIMESTEPS / steps;
    Ok((0..NUM_TRAIN_TIMESTEPS)
        .step_by(stride)
        .map(|t| (t as u32 + 1).min(NUM_TRAIN_TIMESTEPS as u32 - 1))
        .collect())
}

/// How sigmas are spaced for a k-diffusion sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// The sampler's default: the discrete model's own schedule ([`discrete_sigmas`]).
    Automatic,
    /// Karras spacing ([`karras_sigmas`], rho 7, model sigma range).
    Karras,
}

/// The sampling algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SamplerKind {
    /// Euler ancestral (`sample_euler_ancestral`, draws step noise).
    EulerA,
    /// Euler (`sample_euler`).
    Euler,
    /// DDIM on timesteps (A1111 `sd_samplers_timesteps`).
    Ddim,
    /// DPM-Solver++(2M) (`sample_dpmpp_2m`).
    DpmPp2M,
    /// DPM-Solver++ SDE (`sample_dpmpp_sde`, Brownian-tree noise).
    DpmPpSde,
    /// Latent Consistency Model sampler (`sample_lcm`).
    Lcm,
}

/// A sampler as A1111 names it: an algorithm and its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sampler {
    /// The algorithm.
    pub kind: SamplerKind,
    /// The sigma spacing.
    pub scheduler: Scheduler,
}

/// A1111 names (and its `k_*` aliases) accepted by [`Sampler::from_str`].
const SAMPLER_NAMES: &[(&str, &[&str], SamplerKind, Scheduler)] = &[
    (
        "Euler a",
        &["k_euler_a", "k_euler_ancestral"],
        SamplerKind::EulerA,
        Scheduler::Automatic,
    ),
    (
        "Euler",
        &["k_euler"],
        SamplerKind::Euler,
        Scheduler::Automatic,
    ),
    ("DDIM", &["ddim"], SamplerKind::Ddim, Scheduler::Automatic),
    (
        "DPM++ 2M",
        &["k_dpmpp_2m"],
        SamplerKind::DpmPp2M,
        Scheduler::Automatic,
    ),
    (
        "DPM++ 2M Karras",
        &["k_dpmpp_2m_ka"],
        SamplerKind::DpmPp2M,
        Scheduler::Karras,
    ),
    (
        "DPM++ SDE",
        &["k_dpmpp_sde"],
        SamplerKind::DpmPpSde,
        Scheduler::Automatic,
    ),
    (
        "DPM++ SDE Karras",
        &["k_dpmpp_sde_ka"],
        SamplerKind::DpmPpSde,
        Scheduler::Karras,
    ),
    ("LCM", &["k_lcm"], SamplerKind::Lcm, Scheduler::Automatic),
];

impl Sampler {
    /// The accepted A1111 sampler names.
    pub fn names() -> impl Iterator<Item = &'static str> {
        SAMPLER_NAMES.iter().map(|e| e.0)
    }

    /// Whether the sampler draws one noise tensor per step from the image generator
    /// ([`crate::noise::StepNoise`], A1111's `randn_like` hijack): Euler a and LCM, and DDIM,
    /// whose A1111 loop draws (and scales by eta, 0 by default) noise at every step. DPM++ SDE
    /// uses a seeded Brownian tree in A1111 (here: two draws per step from the same generator,
    /// see [`crate::img2img::sample`]); Euler draws none without `s_churn`.
    pub fn draws_step_noise(&self) -> bool {
        matches!(
            self.kind,
            SamplerKind::EulerA | SamplerKind::Lcm | SamplerKind::Ddim
        )
    }

    /// The sampler's sigma schedule for `steps` (`steps + 1` values ending in 0), as A1111's
    /// `KDiffusionSampler.get_sigmas`; DDIM works on timesteps instead ([`ddim_timesteps`]).
    pub fn sigmas(&self, steps: usize) -> Result<Vec<f32>, SdError> {
        match (self.kind, self.scheduler) {
            (SamplerKind::Ddim, _) => Err(SdError::Setting {
                what: "sampler",
                why: "DDIM uses timesteps, not sigmas".into(),
            }),
            (SamplerKind::Lcm, Scheduler::Automatic) => Ok(lcm_sigmas(steps)),
            (_, Scheduler::Automatic) => Ok(discrete_sigmas(steps)),
            (_, Scheduler::Karras) => {
                Ok(karras_sigmas(steps, sigma_min(), sigma_max(), KARRAS_RHO))
            }
        }
    }

    /// The img2img plan for `steps` and `denoising_strength` (A1111 default, without
    /// "img2img_fix_steps"; see [`img2img_steps`]).
    pub fn img2img(&self, steps: usize, denoising_strength: f64) -> Result<Img2Img, SdError> {
        self.img2img_with(steps, denoising_strength, false)
    }

    /// As [`Sampler::img2img`], with A1111's "fix steps" option when `fix_steps`.
    pub fn img2img_with(
        &self,
        steps: usize,
        denoising_strength: f64,
        fix_steps: bool,
    ) -> Result<Img2Img, SdError> {
        let (total, t_enc) = img2img_steps(steps, denoising_strength, fix_steps)?;
        let plan = if self.kind == SamplerKind::Ddim {
            // sd_samplers_timesteps.sample_img2img: schedule timesteps[:t_enc], the init
            // latent noised to timesteps[t_enc]; the DDIM loop makes len - 1 model calls.
            let ts = ddim_timesteps(total)?;
            let noise_timestep = *ts.get(t_enc).ok_or_else(|| SdError::Setting {
                what: "img2img steps",
                why: format!("t_enc {t_enc} is past DDIM's {} timesteps", ts.len()),
            })?;
            Img2ImgPlan::Timesteps {
                timesteps: ts[..t_enc].to_vec(),
                noise_timestep,
            }
        } else {
            // sd_samplers_kdiffusion.sample_img2img: sigmas[steps - t_enc - 1:] (a Python
            // slice, so a negative start counts from the end).
            let sigmas = self.sigmas(total)?;
            let start = total as isize - t_enc as isize - 1;
            let start = if start < 0 {
                (sigmas.len() as isize + start).max(0) as usize
            } else {
                (start as usize).min(sigmas.len())
            };
            Img2ImgPlan::Sigmas(sigmas[start..].to_vec())
        };
        Ok(Img2Img {
            total_steps: total,
            t_enc,
            plan,
        })
    }
}

impl fmt::Display for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = SAMPLER_NAMES
            .iter()
            .find(|e| e.2 == self.kind && e.3 == self.scheduler)
            .map(|e| e.0)
            .unwrap_or("?");
        f.write_str(name)
    }
}

impl FromStr for Sampler {
    type Err = SdError;

    /// Parses an A1111 sampler name or alias, ignoring case and surrounding spaces.
    fn from_str(s: &str) -> Result<Self, SdError> {
        let key = s.trim();
        SAMPLER_NAMES
            .iter()
            .find(|(name, aliases, _, _)| {
                name.eq_ignore_ascii_case(key)
                    || aliases.iter().any(|a| a.eq_ignore_ascii_case(key))
            })
            .map(|&(_, _, kind, scheduler)| Sampler { kind, scheduler })
            .ok_or_else(|| SdError::UnknownSampler {
                name: s.to_string(),
                accepted: Sampler::names().collect::<Vec<_>>().join(", "),
            })
    }
}

/// `(schedule steps, t_enc)` of an img2img run, as A1111's `setup_img2img_steps`: by default the
/// schedule has `steps` entries and `t_enc = int(min(denoising_strength, 0.999) * steps)`
/// (float64, truncated); with `fix_steps` the schedule is stretched to
/// `int(steps / min(strength, 0.999))` (0 when the strength is 0) and `t_enc = steps - 1`.
/// A k-diffusion sampler then runs `t_enc + 1` steps.
pub fn img2img_steps(
    steps: usize,
    denoising_strength: f64,
    fix_steps: bool,
) -> Result<(usize, usize), SdError> {
    if steps == 0 {
        return Err(SdError::Setting {
            what: "steps",
            why: "must be at least 1".into(),
        });
    }
    if !(0.0..=1.0).contains(&denoising_strength) {
        return Err(SdError::Setting {
            what: "denoising strength",
            why: format!("{denoising_strength} is not in [0, 1]"),
        });
    }
    let d = denoising_strength.min(0.999);
    Ok(if fix_steps {
        let total = if denoising_strength > 0.0 {
            (steps as f64 / d) as usize
        } else {
            0
        };
        (total, steps - 1)
    } else {
        (steps, (d * steps as f64) as usize)
    })
}

/// What an img2img run samples over.
#[derive(Debug, Clone, PartialEq)]
pub enum Img2ImgPlan {
    /// k-diffusion samplers: the sigmas to run (ending in 0). The init latent is noised as
    /// `x + noise * sigmas[0]`; the sampler takes `len - 1` steps.
    Sigmas(Vec<f32>),
    /// DDIM: the timesteps schedule (ascending) and the timestep the init latent is noised to
    /// (`sqrt(ac) * x + sqrt(1 - ac) * noise`). A1111's DDIM loop makes `len - 1` model calls.
    Timesteps {
        /// `timesteps[:t_enc]` of the full schedule.
        timesteps: Vec<u32>,
        /// `timesteps[t_enc]`.
        noise_timestep: u32,
    },
}

/// An img2img run's schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Img2Img {
    /// Length of the full schedule the run is cut from.
    pub total_steps: usize,
    /// A1111's `t_enc`.
    pub t_enc: usize,
    /// The sigmas or timesteps to run.
    pub plan: Img2ImgPlan,
}

impl Img2Img {
    /// Sampler steps actually run (model calls for first-order samplers).
    pub fn steps_run(&self) -> usize {
        match &self.plan {
            Img2ImgPlan::Sigmas(s) => s.len().saturating_sub(1),
            Img2ImgPlan::Timesteps { timesteps, .. } => timesteps.len().saturating_sub(1),
        }
    }
}
