# Builds of the Lambda functions. SAM runs `make build-<LogicalId>` for every function of
# infra/template.yaml (BuildMethod: makefile) with ARTIFACTS_DIR set; `make lambdas` builds all
# five into target/lambda/<name>/bootstrap. Set ARCHITECTURE=arm64 for Graviton (and deploy with
# the template parameter Architecture=arm64). Needs cargo-lambda (pip install cargo-lambda).

LAMBDA_PROFILE ?= lambda
ARCHITECTURE ?= x86_64
ARCH_FLAG := $(if $(filter arm64,$(ARCHITECTURE)),--arm64,--x86-64)
FUNCTIONS := cashout-api cashout-provider-webhooks cashout-dispatcher cashout-poller cashout-callbacks

.PHONY: lambdas
lambdas:
	cargo lambda build --profile $(LAMBDA_PROFILE) $(ARCH_FLAG) $(addprefix --bin ,$(FUNCTIONS))
	@ls -l $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap)

# build-<LogicalId>: one function, copied where SAM wants it.
define function
.PHONY: build-$(1)
build-$(1):
	cargo lambda build --profile $(LAMBDA_PROFILE) $(ARCH_FLAG) --bin $(2)
	cp target/lambda/$(2)/bootstrap $$(ARTIFACTS_DIR)/bootstrap
endef

$(eval $(call function,ApiFunction,cashout-api))
$(eval $(call function,ProviderWebhooksFunction,cashout-provider-webhooks))
$(eval $(call function,DispatcherFunction,cashout-dispatcher))
$(eval $(call function,PollerFunction,cashout-poller))
$(eval $(call function,CallbacksFunction,cashout-callbacks))
