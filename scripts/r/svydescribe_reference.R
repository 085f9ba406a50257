# R's survey package on the designs exported by scripts/svydescribe_reference.py: the whole
# NHANES design (strata, nested PSUs, weights), subset() to the analysis sample (a domain), then
# what the weighted Table 1 and Table 2 report, each in one row of a long table:
#   mean / percent: svymean overall and in each group (a subset() of the domain), est and SE;
#   population: svytotal of 1, overall and by group;
#   test: svychisq (default: Rao-Scott F) for a categorical variable by group; svyttest for a
#     continuous one in two groups, regTermTest(svyglm(y ~ group), ~group) for more;
#   geometric_mean: svymean of the log exposure, confint on degf; exp() of both;
#   quantile: svyquantile defaults (interval.type "mean" = Woodruff, qrule "math").
#   Rscript scripts/r/svydescribe_reference.R IN_DIR OUT_DIR PERCENTILES CASE...
suppressPackageStartupMessages(library(survey))
args <- commandArgs(trailingOnly = TRUE)
in_dir <- args[1]
out_dir <- args[2]
percentiles <- as.numeric(strsplit(args[3], ",")[[1]])

row <- function(kind, variable, level = "", group = "", est = NA, se = NA, lci = NA,
                uci = NA, p = NA, test = "") {
  num <- function(x) as.numeric(unname(x))
  data.frame(kind = kind, variable = variable, level = level, group = group, est = num(est),
             se = num(se), lci = num(lci), uci = num(uci), p_value = num(p), test = test)
}

one_formula <- function(name) as.formula(paste0("~`", name, "`"))

estimates <- function(design, var, categorical, group) {
  m <- svymean(one_formula(var), design, na.rm = TRUE)
  if (!categorical) return(row("mean", var, group = group, est = coef(m), se = SE(m)))
  levels <- substring(names(coef(m)), nchar(var) + 1)  # names are varlevel
  row("percent", var, level = levels, group = group, est = 100 * coef(m), se = 100 * SE(m))
}

group_test <- function(design, var, categorical) {
  f <- as.formula(paste0("`", var, "` ~ group__"))
  if (categorical) {
    test <- svychisq(as.formula(paste0("~`", var, "` + group__")), design)
    return(row("test", var, p = test$p.value, test = "Rao-Scott F"))
  }
  if (nlevels(design$variables$group__) == 2) {
    return(row("test", var, p = svyttest(f, design)$p.value, test = "design-based t-test"))
  }
  wald <- regTermTest(svyglm(f, design), ~group__)
  row("test", var, p = as.numeric(wald$p), test = "design-based Wald F")
}

exposure_rows <- function(design, name) {
  m <- svymean(one_formula(paste0("log_", name)), design)
  ci <- confint(m, df = degf(design))
  gm <- row("geometric_mean", name, est = exp(coef(m)), se = SE(m), lci = exp(ci[1]),
            uci = exp(ci[2]))
  q <- svyquantile(one_formula(name), design, quantiles = percentiles / 100, ci = TRUE)[[1]]
  rbind(gm, row("quantile", name, level = percentiles, est = q[, 1], se = q[, 4],
                lci = q[, 2], uci = q[, 3]))
}

for (case in args[-(1:3)]) {
  data <- read.csv(file.path(in_dir, paste0(case, ".csv")), stringsAsFactors = TRUE,
                   na.strings = c("", "NA"))
  data$one <- 1
  variables <- read.csv(file.path(in_dir, paste0(case, "_variables.csv")))$variable
  exposures <- sub("^log_", "", grep("^log_", names(data), value = TRUE))
  whole <- svydesign(ids = ~psu, strata = ~stratum, weights = ~weight, nest = TRUE, data = data)
  domain <- subset(whole, in_domain == 1)
  groups <- levels(droplevels(domain$variables$group__))
  total <- svytotal(~one, domain)
  rows <- list(row("population", "one", est = coef(total), se = SE(total)))
  for (g in groups) {
    total <- svytotal(~one, subset(domain, group__ == g))
    rows[[length(rows) + 1]] <- row("population", "one", group = g, est = coef(total),
                                    se = SE(total))
  }
  for (var in variables) {
    categorical <- is.factor(data[[var]])
    rows[[length(rows) + 1]] <- estimates(domain, var, categorical, "")
    for (g in groups) {
      rows[[length(rows) + 1]] <- estimates(subset(domain, group__ == g), var, categorical, g)
    }
    rows[[length(rows) + 1]] <- group_test(domain, var, categorical)
  }
  for (name in exposures) rows[[length(rows) + 1]] <- exposure_rows(domain, name)
  result <- do.call(rbind, rows)
  result$design_df <- degf(domain)
  result$n <- sum(data$in_domain == 1)
  result$r_version <- paste(R.version$major, R.version$minor, sep = ".")
  result$survey_version <- as.character(packageVersion("survey"))
  write.csv(result, file.path(out_dir, paste0(case, ".csv")), row.names = FALSE)
}
