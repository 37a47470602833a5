"""What the SAM CLI started by the local cloud does differently (local_cloud/sam_waits/sitecustomize.py): its waiters
pause at most SAM_CLI_POLL_DELAY, its responses' timestamps are read without dateutil, a zip it made of a build
folder is handed out again, the zip SAM would make of the folder as it is now, its templates are read once and
written by libyaml (the same data), and its policy templates checked once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from local_cloud.deploy import with_short_sam_waits

# Runs in a SAM CLI's Python started as the local cloud starts SAM. For each FOLDER:METHOD argument, in order: zips
# the folder with SAM's zip_folder (the kept one) and with SAM's own, and prints a line: both zips' bytes equal,
# the checksums equal, the zip's entries (name, mode, content), how many zips are kept.
ZIP_EACH = """
import json, os, sys, zipfile
from samcli.lib.package import utils
import sitecustomize

assert utils.zip_folder is sitecustomize._kept_zip_folder
kept_dir = os.path.join(os.environ["TMPDIR"], "local-cloud-sam-zips")
for argument in sys.argv[1:]:
    folder, method = argument.rsplit(":", 1)
    with utils.zip_folder(folder, getattr(utils, method)) as (kept, kept_md5):
        kept_bytes = open(kept, "rb").read()
        with zipfile.ZipFile(kept) as z:
            entries = sorted([i.filename, i.external_attr >> 16, z.read(i).decode()] for i in z.infolist())
    with sitecustomize._zip_folder(folder, getattr(utils, method)) as (own, own_md5):
        own_bytes = open(own, "rb").read()
    print(json.dumps({"same": kept_bytes == own_bytes, "md5": kept_md5 == own_md5, "entries": entries,
                      "kept": len([n for n in os.listdir(kept_dir) if n.endswith(".zip")])}))
"""
LAMBDA = "make_zip_with_lambda_permissions"
REPO = Path(__file__).resolve().parents[2]

# botocore's waiter pauses (SAM's hard-coded 30 s ones), timed, under the SAM_CLI_POLL_DELAY of the moment.
PAUSE = """
import os, time, botocore.waiter

def paused(seconds):
    started = time.monotonic()
    botocore.waiter.time.sleep(seconds)
    return time.monotonic() - started

print(paused(30))
os.environ["SAM_CLI_POLL_DELAY"] = "0.3"
print(paused(30))
"""


def test_sams_waiters_pause_at_most_the_poll_delay_of_the_moment() -> None:
    env = with_short_sam_waits({"PATH": "/usr/bin:/bin", "SAM_CLI_POLL_DELAY": "0.05"})
    done = subprocess.run([sys.executable, "-c", PAUSE], env=env, capture_output=True, text=True, check=True)
    capped, later = (float(x) for x in done.stdout.split())
    assert 0.05 <= capped < 10  # not 30 s
    assert 0.3 <= later < 10


# A DescribeStackEvents answer as AWS sends it, read by the botocore of a SAM CLI the local cloud starts: each
# event's timestamp and its type, and whether botocore's own dateutil reading gives the same instant.
STACK_EVENTS = """
import json, botocore.parsers, botocore.session, botocore.utils
stamps = ["2026-12-02T16:00:00.123Z", "2026-12-02T16:00:01Z", "2026-12-02T17:00:02+01:00", "1796227200"]
members = "".join(
    f"<member><StackId>s</StackId><EventId>{i}</EventId><StackName>s</StackName><LogicalResourceId>r</LogicalResourceId>"
    f"<ResourceType>AWS::S3::Bucket</ResourceType><Timestamp>{stamp}</Timestamp>"
    f"<ResourceStatus>CREATE_COMPLETE</ResourceStatus></member>" for i, stamp in enumerate(stamps))
body = (f"<DescribeStackEventsResponse><DescribeStackEventsResult><StackEvents>{members}</StackEvents>"
        "</DescribeStackEventsResult></DescribeStackEventsResponse>").encode()
model = botocore.session.get_session().get_service_model("cloudformation").operation_model("DescribeStackEvents")
parsed = botocore.parsers.create_parser("query").parse({"body": body, "headers": {}, "status_code": 200},
                                                        model.output_shape)
read = [event["Timestamp"] for event in parsed["StackEvents"]]
print(json.dumps({"fast": botocore.parsers.DEFAULT_TIMESTAMP_PARSER.__module__,
                  "same": [r == botocore.utils.parse_timestamp(s) for r, s in zip(read, stamps)],
                  "aware": [r.utcoffset() is not None for r in read]}))
"""


def test_sams_botocore_reads_each_events_timestamp_as_botocore_does_without_dateutil() -> None:
    env = with_short_sam_waits({"PATH": "/usr/bin:/bin"})
    done = subprocess.run([sys.executable, "-c", STACK_EVENTS], env=env, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"fast": "local_cloud.timestamps", "same": [True] * 4, "aware": [True] * 4}


def test_a_kept_zip_is_the_zip_sam_makes_of_the_folder_as_it_is_now(tmp_path: Path) -> None:
    first = tmp_path / "first" / "Function"
    (first / "pkg").mkdir(parents=True)
    (first / "app.py").write_text("first")
    (first / "pkg" / "mod.py").write_text("module")
    changed = shutil.copytree(first, tmp_path / "changed" / "Function")
    (changed / "app.py").write_text("second")
    executable = shutil.copytree(changed, tmp_path / "executable" / "Function")
    (executable / "app.py").chmod(0o755)

    env = with_short_sam_waits({"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)})
    done = subprocess.run(
        [sys.executable, "-c", ZIP_EACH, f"{first}:{LAMBDA}", f"{first}:{LAMBDA}", f"{changed}:{LAMBDA}",
         f"{executable}:{LAMBDA}", f"{executable}:make_zip"], env=env, capture_output=True, text=True, check=True)
    made, again, new_content, new_mode, other_method = map(json.loads, done.stdout.splitlines())

    assert all(line["same"] and line["md5"] for line in (made, again, new_content, new_mode, other_method))
    assert made["entries"] == [["app.py", 0o100644 | 0o444, "first"], ["pkg/mod.py", 0o100644 | 0o444, "module"]]
    assert made["kept"] == 1
    assert again == made  # handed out from the kept zip
    assert ["app.py", 0o100644 | 0o444, "second"] in new_content["entries"]
    assert new_content["kept"] == 2
    assert ["app.py", 0o100755, "second"] in new_mode["entries"]  # a new mode, the same content: a new zip
    assert new_mode["kept"] == 3
    assert ["app.py", 0o100755, "second"] in other_method["entries"]  # SAM's other zip settings: kept apart
    assert other_method["kept"] == 4


# Reads TEMPLATE as SAM reads a template (twice, as its providers do) and writes the second reading as SAM writes the
# packaged template; prints whether the readings are equal but separate, whether PyYAML's pure-Python reading gives the
# same data, what SAM reads back from the text written (by libyaml) and from PyYAML's pure-Python emitter's text (with
# SAM's representers), and how many policy-template processors SAM's translator plugins got.
READ_AND_WRITE = """
import json, sys, yaml
from samcli import yamlhelper
from samtranslator.translator import translator
import sitecustomize

text = open(sys.argv[1]).read()
first, second = yamlhelper.yaml_parse(text), yamlhelper.yaml_parse(text)
separate = first is not second and first == second
first["Resources"].clear()  # SAM changes what it reads: the next reading is the text's, whole
third = yamlhelper.yaml_parse(text)
written = yamlhelper.yaml_dump(second)
pure = type("Pure", (yaml.SafeDumper,), {"ignore_aliases": lambda self, data: True,
                                          "yaml_representers": dict(yamlhelper.CfnDumper.yaml_representers)})
processors = {id(translator.make_policy_template_for_function_plugin()._policy_template_processor) for _ in range(3)}
print(json.dumps({"separate": separate, "whole": third == second and bool(third["Resources"]),
                  "pure_read": yaml.load(text, yaml.SafeLoader) == third,
                  "libyaml": yamlhelper.CfnDumper is sitecustomize._LibyamlCfnDumper,
                  "second": second, "written_read": yamlhelper.yaml_parse(written),
                  "pure_written_read": yamlhelper.yaml_parse(yaml.dump(second, default_flow_style=False, Dumper=pure)),
                  "processors": len(processors)}))
"""

# What a template may hold that a YAML emitter writes in more than one way: an account id SAM quotes (leading zero),
# words YAML reads as booleans or null, numbers as text, long and multi-line text, quotes, colons, hashes, non-ASCII.
TRICKY = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "${AWS::StackName}-queue"
      Tags:
        - {Key: account, Value: "012345678901"}
        - {Key: flags, Value: "yes"}
        - {Key: off, Value: "null"}
        - {Key: version, Value: "1.10"}
        - {Key: empty, Value: ""}
        - {Key: note, Value: "a: b # not a comment, 'quoted' and \\"double\\" and é ✓, and long enough to be folded"}
      Policy: !GetAtt Other.Arn
  Machine:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      DefinitionString: |
        {
          "StartAt": "Step 1",
          "States": {"Step 1": {"Type": "Pass", "End": true,
                     "Comment": "a line that runs well past the eighty characters an emitter wraps at, to see"}}
        }
      Comment: >-
        folded text
        over two lines
Outputs:
  Arn: {Value: !Ref Machine, Export: {Name: !Join [":", [!Ref "AWS::StackName", arn]]}}
"""


@pytest.mark.parametrize("template", ["the application's template", "a template of tricky values"])
def test_sam_reads_a_template_once_and_writes_it_with_libyaml_as_the_same_template(tmp_path: Path,
                                                                                   template: str) -> None:
    source = REPO / "template.yaml"
    if template != "the application's template":
        source = tmp_path / "template.yaml"
        source.write_text(TRICKY, encoding="utf-8")
    env = with_short_sam_waits({"PATH": "/usr/bin:/bin"})
    done = subprocess.run([sys.executable, "-c", READ_AND_WRITE, str(source)], env=env, capture_output=True,
                          text=True, check=True)
    result = json.loads(done.stdout)
    assert result["separate"] and result["whole"] and result["pure_read"]
    assert result["libyaml"]
    # libyaml may break a long quoted line elsewhere than PyYAML's emitter: both texts read back to the same template
    assert result["written_read"] == result["pure_written_read"] == result["second"]
    assert result["processors"] == 1  # the policy templates checked against their schema once, not per expansion
