runbook { name = "bad-gates", description = "approval tables that cannot work" }

step "a" {
  approve = { "Go?", quorum = 3, approvers = { "alice", "bob" } },
  run = function(ctx) end,
}

step "b" {
  approve = { "Go?", default = "approve" },
  run = function(ctx) end,
}

step "c" {
  approve = { "Go?", timeout = "5m", default = "maybe", on_deny = "panic" },
  run = function(ctx) end,
}

step "d" {
  approve = { "Go?", approvers = { "alice", "al ice", "alice" }, qorum = 2 },
  run = function(ctx) end,
}

step "e" {
  approve = { quorum = 0 },
  run = function(ctx) end,
}
