"""User-agent families: browsers and libraries through ua-parser, automation and tool tags
normalised; unusual_access no longer sees a new client in every tool run."""

from __future__ import annotations

import polars as pl
import pytest

from auditlens.detect import unusual_access
from auditlens.detect.agents import agent_family, family_expr
from tests.detect.timeline import timeline

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("agent", "family"),
    [
        (CHROME, "chrome"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "firefox"),
        ("curl/8.5.0", "curl"),
        ("python-requests/2.32.3", "python-requests"),
        ("aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.amzn.2 prompt/off", "aws-cli"),
        ("Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1 md/arch#x86_64", "boto3"),
        ("[aws-sdk-go/1.44.0 (go1.20; linux; amd64)]", "aws-sdk-go"),
        ("[aws-sdk-java/1.12.0 Linux/5.10 OpenJDK_64-Bit_Server_VM/25.0]", "aws-sdk-java"),
        (
            "APN/1.0 HashiCorp/1.0 Terraform/1.6.0 (+https://www.terraform.io) "
            "terraform-provider-aws/5.31.0 aws-sdk-go/1.49.13 (go1.21.5; linux; amd64)",
            "terraform",
        ),
        ("[APN/1.0 HashiCorp/1.0 Terraform/1.1.2 (+https://www.terraform.io)]", "terraform"),
        ("stratus-red-team_4c9ae9b5-1b8a-4b0a-9e2b-6f3d7c1e2a10", "stratus-red-team"),
        ("stratus-red-team_11111111-2222-4333-8444-555555555555", "stratus-red-team"),
        ("console.amazonaws.com", "aws-console"),
        ("signin.amazonaws.com", "aws-console"),
        ("AWS Internal", "aws-internal"),
        ("cloudformation.amazonaws.com", "cloudformation"),
        ("lambda.amazonaws.com", "aws-service"),
        ("MyTool/3.2 (build 77)", "mytool"),
        ("   ", None),
        (None, None),
    ],
)
def test_families(agent: str | None, family: str | None) -> None:
    assert agent_family(agent) == family


def test_family_expr_parses_each_distinct_agent_once_and_keeps_nulls() -> None:
    agents = ["curl/8.5.0", None, "curl/7.1", CHROME] * 1000
    out = pl.DataFrame({"user_agent": agents}).select(family_expr())["user_agent"]
    assert out.to_list()[:4] == ["curl", None, "curl", "chrome"]
    agent_family.cache_clear()
    pl.DataFrame({"user_agent": agents}).select(family_expr())
    assert agent_family.cache_info().misses == 3  # one parse per distinct agent


def history(n: int, ua: str) -> list[tuple]:
    return [(i, "webhook.tested", "success", "a@x.io", "10.0.0.5", ua) for i in range(n)]


def test_a_tool_tag_with_a_new_run_id_is_not_a_new_client() -> None:
    run = "stratus-red-team_{}-1b8a-4b0a-9e2b-6f3d7c1e2a10"
    tl = timeline(
        *history(25, run.format("00000000")),
        (30, "ec2.describe_instances", "success", "a@x.io", "10.0.0.5", run.format("99999999")),
    )
    assert unusual_access(tl).height == 0
    versions = timeline(
        *history(25, "aws-cli/2.15.0 Python/3.11.6"),
        (30, "s3.list_buckets", "success", "a@x.io", "10.0.0.5", "aws-cli/2.17.1 Python/3.12.1"),
    )
    assert unusual_access(versions).height == 0
    new_tool = timeline(
        *history(25, "aws-cli/2.15.0"),
        (30, "s3.list_buckets", "success", "a@x.io", "10.0.0.5", "Boto3/1.34.0 md/Botocore#1.34"),
    )
    f = unusual_access(new_tool)
    assert f.height == 1 and "new client (boto3)" in f["summary"][0]
