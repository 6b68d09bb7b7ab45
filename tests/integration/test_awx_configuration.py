"""awx/configure.yml applies the AWX objects of awx/configuration (infra.aap_configuration's variable model) with the
awx.awx modules. AWX cannot run on this machine: the playbook runs against a loopback stand-in of its REST API
(fake_awx.FakeAWX) that keeps what it is sent; the test reads back what was created."""

import json
import os
import subprocess
import sys

import pytest
import yaml
from fake_awx import FakeAWX

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGURE = os.path.join(ROOT, "awx", "configure.yml")
SECRETS = {
    "aws_access_key_id": "AKIAFAKEKEYID0001",
    "aws_secret_access_key": "s3cr3t-AWS-key-never-in-logs",
    "webhook_url": "https://hooks.invalid/never-in-logs-webhook",
    "slack_webhook_url": "https://hooks.slack.invalid/never-in-logs-slack",
}
PASSWORD = "controller-password-never-in-logs"


def apply(fake, *args, password=PASSWORD):
    env = dict(
        os.environ,
        CONTROLLER_HOST=fake.url,
        CONTROLLER_USERNAME="admin",
        CONTROLLER_PASSWORD=password,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_STDOUT_CALLBACK="default",
    )
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-v"]
    command += [
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        "-e",
        json.dumps({"bluegreen_awx_secrets": SECRETS}),
    ]
    proc = subprocess.run(
        command + [*args, CONFIGURE], capture_output=True, text=True, timeout=600, env=env, check=False
    )
    return proc


@pytest.fixture(scope="module")
def applied():
    with FakeAWX(password=PASSWORD) as fake:
        first = apply(fake)
        writes_after_first = len(fake.writes())
        second = apply(fake)
        yield fake, first, second, writes_after_first


def test_apply_creates_every_object_and_a_second_run_changes_nothing(applied):
    fake, first, second, writes_after_first = applied
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed=" in first.stdout and "changed=0 " not in first.stdout
    assert second.returncode == 0, second.stdout + second.stderr
    # the second run finds everything as it wants it: no write request at all, and nothing reported changed
    assert len(fake.writes()) == writes_after_first
    assert "changed=0 " in second.stdout and "failed=0 " in second.stdout
    projects = fake.objects["projects"].values()
    assert [(p["name"], p["scm_type"]) for p in projects] == [("bluegreen.aws", "git")]
    inventories = sorted(i["name"] for i in fake.objects["inventories"].values())
    assert inventories == ["bluegreen-dev", "bluegreen-prod", "bluegreen-stage"]
    assert sorted(c["name"] for c in fake.objects["credential_types"].values()) == [
        "bluegreen AWS",
        "bluegreen release notifications",
    ]
    aws = fake.named("credential_types", "bluegreen AWS")
    assert aws["injectors"]["env"]["AWS_SECRET_ACCESS_KEY"] == "{{ aws_secret_access_key }}"
    assert {f["id"] for f in aws["inputs"]["fields"] if f.get("secret")} == {
        "aws_secret_access_key",
        "aws_session_token",
    }


ENVIRONMENTS = ("dev", "stage", "prod")


def test_job_templates_per_environment_run_existing_playbooks_one_at_a_time_with_surveys(applied):
    fake = applied[0]
    templates = {t["name"]: t for t in fake.objects["job_templates"].values()}
    inventories = {i["id"]: i["name"] for i in fake.objects["inventories"].values()}
    expected = {f"bluegreen {op} {env}" for op in ("deploy", "rollback", "abort", "unlock") for env in ENVIRONMENTS}
    expected |= {"bluegreen promote dev to stage", "bluegreen promote stage to prod"}
    assert set(templates) == expected
    for name, template in templates.items():
        assert os.path.isfile(os.path.join(ROOT, template["playbook"])), (name, template["playbook"])
        assert template["allow_simultaneous"] is False, name
        # the environment is the template's own inventory: never asked on launch, never a survey answer
        assert template["survey_enabled"] is True and template["ask_inventory_on_launch"] is False, name
        target = name.split()[-1]
        assert inventories[template["inventory"]] == f"bluegreen-{target}", name
        survey = fake.survey("job_templates", template["id"])
        assert "release_environment" not in {q["variable"] for q in survey["spec"]}, name
        credentials = [fake.find(i)["name"] for i in fake.linked("job_templates", template["id"], "credentials")]
        assert sorted(credentials) == ["bluegreen AWS", "bluegreen release notifications"]
    for env in ENVIRONMENTS:
        deploy = fake.survey("job_templates", templates[f"bluegreen deploy {env}"]["id"])
        assert [(q["variable"], q["required"]) for q in deploy["spec"]] == [("release_version", True)]
        abort = {
            q["variable"]: q for q in fake.survey("job_templates", templates[f"bluegreen abort {env}"]["id"])["spec"]
        }
        assert abort["release_reason"]["required"] is True
        assert templates[f"bluegreen deploy {env}"]["playbook"] == "playbooks/deploy.yml"
        assert templates[f"bluegreen rollback {env}"]["playbook"] == "playbooks/rollback.yml"
    promote = templates["bluegreen promote stage to prod"]
    assert promote["playbook"] == "playbooks/promote.yml"
    assert yaml.safe_load(promote["extra_vars"])["release_source_environment"] == "stage"
    # each environment's inventory reads its directory of the project, updated on launch
    sources = {inventories[s["inventory"]]: s for s in fake.objects["inventory_sources"].values()}
    assert set(sources) == {f"bluegreen-{env}" for env in ENVIRONMENTS}
    for env in ENVIRONMENTS:
        source = sources[f"bluegreen-{env}"]
        assert (source["source"], source["source_path"]) == ("scm", f"inventories/aws-example/{env}")
        assert os.path.isdir(os.path.join(ROOT, source["source_path"]))
        assert fake.find(source["source_project"])["name"] == "bluegreen.aws" and source["update_on_launch"] is True


def test_workflow_dev_stage_approval_prod_with_rollbacks_on_failure(applied):
    fake = applied[0]
    (workflow,) = fake.objects["workflow_job_templates"].values()
    assert workflow["name"] == "bluegreen release pipeline" and workflow["allow_simultaneous"] is False
    nodes = {
        n["identifier"]: n
        for n in fake.objects["workflow_job_template_nodes"].values()
        if n["workflow_job_template"] == workflow["id"]
    }
    assert len(nodes) == 7

    def edges(kind):
        found = set()
        for identifier, node in nodes.items():
            for target in fake.linked("workflow_job_template_nodes", node["id"], kind):
                found.add((identifier, fake.find(target)["identifier"]))
        return found

    assert edges("success_nodes") == {
        ("deploy-dev", "promote-stage"),
        ("promote-stage", "approve-prod"),
        ("approve-prod", "promote-prod"),
    }
    assert edges("failure_nodes") == {
        ("deploy-dev", "rollback-dev"),
        ("promote-stage", "rollback-stage"),
        ("promote-prod", "rollback-prod"),
    }
    assert edges("always_nodes") == set()
    approval = fake.find(nodes["approve-prod"]["unified_job_template"])
    assert approval["type"] == "workflow_approval_template" and approval["name"] == "Release to prod?"
    assert approval["timeout"] == 86400

    def runs(identifier):
        return fake.find(nodes[identifier]["unified_job_template"])["name"]

    assert runs("deploy-dev") == "bluegreen deploy dev"
    assert runs("promote-stage") == "bluegreen promote dev to stage"
    assert runs("promote-prod") == "bluegreen promote stage to prod"
    for env in ENVIRONMENTS:
        assert runs(f"rollback-{env}") == f"bluegreen rollback {env}"
    notified = fake.linked("workflow_job_templates", workflow["id"], "notification_templates_error")
    assert [fake.find(i)["name"] for i in notified] == ["bluegreen release webhook"]
    assert fake.linked("workflow_job_templates", workflow["id"], "notification_templates_approvals") == notified
    survey = fake.survey("workflow_job_templates", workflow["id"])
    assert [q["variable"] for q in survey["spec"]] == ["release_version"]


def test_secrets_reach_the_controller_and_never_the_log(applied):
    fake, first, second, unused = applied
    sent = json.dumps([r["body"] for r in fake.requests])
    for secret in SECRETS.values():
        assert secret in sent  # the controller got them (so the test below means something)
    for output in (first.stdout + first.stderr, second.stdout + second.stderr):
        for secret in [*SECRETS.values(), PASSWORD]:
            assert secret not in output
    credential = fake.named("credentials", "bluegreen AWS")
    assert fake._view("credentials", credential)["inputs"]["aws_secret_access_key"] == "$encrypted$"


def test_without_a_controller_it_stops_and_says_what_to_set():
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLLER_")}
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", CONFIGURE],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(env, ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable),
        check=False,
    )
    assert proc.returncode != 0 and "set CONTROLLER_HOST" in proc.stdout


def test_configuration_files_follow_the_infra_aap_configuration_model():
    names = sorted(os.listdir(os.path.join(ROOT, "awx", "configuration")))
    variables = {}
    for name in names:
        with open(os.path.join(ROOT, "awx", "configuration", name), encoding="utf-8") as f:
            variables.update(yaml.safe_load(f))
    for key in (
        "controller_projects",
        "controller_inventories",
        "controller_inventory_sources",
        "controller_credential_types",
        "controller_credentials",
        "controller_templates",
        "controller_workflows",
        "controller_notifications",
    ):
        assert isinstance(variables[key], list) and variables[key], key
    (workflow,) = variables["controller_workflows"]
    assert [n for n in workflow["simplified_workflow_nodes"] if "approval_node" in n]
