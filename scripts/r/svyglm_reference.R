# R's survey::svyglm on the designs exported by scripts/svyglm_reference.py: the whole NHANES
# design (strata, nested PSUs, weights), subset() to the analysis sample (a domain), then the
# same GLM as bayesmetal's (gaussian, or quasibinomial for a 0/1 outcome).
#   Rscript scripts/r/svyglm_reference.R IN_DIR OUT_DIR CASE...
suppressPackageStartupMessages(library(survey))
args <- commandArgs(trailingOnly = TRUE)
in_dir <- args[1]
out_dir <- args[2]
for (case in args[-(1:2)]) {
  data <- read.csv(file.path(in_dir, paste0(case, ".csv")))
  whole <- svydesign(ids = ~psu, strata = ~stratum, weights = ~weight, nest = TRUE, data = data)
  domain <- subset(whole, in_domain == 1)
  terms <- setdiff(names(data), c("SEQN", "weight", "stratum", "psu", "in_domain", "y"))
  binary <- all(data$y[data$in_domain == 1] %in% c(0, 1))
  family <- if (binary) quasibinomial() else gaussian()
  fit <- svyglm(reformulate(terms, "y"), design = domain, family = family)
  unweighted <- glm(reformulate(terms, "y"), data = data[data$in_domain == 1, ],
                    family = if (binary) binomial() else gaussian())
  result <- data.frame(
    term = c("intercept", terms),
    estimate = unname(coef(fit)),
    se = unname(SE(fit)),
    unweighted_estimate = unname(coef(unweighted)),
    unweighted_se = unname(sqrt(diag(vcov(unweighted)))),
    design_df = degf(domain),
    n = sum(data$in_domain == 1),
    r_version = paste(R.version$major, R.version$minor, sep = "."),
    survey_version = as.character(packageVersion("survey"))
  )
  write.csv(result, file.path(out_dir, paste0(case, ".csv")), row.names = FALSE)
}
