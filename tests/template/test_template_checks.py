"""Every template fact holds for the composed stack in every mode, and each check catches a
deliberately broken copy: of the composed stack, or of template.yaml's nesting of the functions."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import template_checks as tc
from template_model import LINKS, MODES, NESTED_ID, compose, resolve
from testkit import transform

Template = dict[str, Any]
# A check, a breakage it must catch, and the mode to break.
Case = tuple[Callable[[Template], list[str]], Callable[[Template], None], str]


def _p(t: Template, rid: str) -> dict[str, Any]:
    return t["Resources"][rid]["Properties"]


def _writer_client_statement(t: Template) -> dict[str, Any]:
    return next(s for s in tc.role_statements(t, "WriterFunction") if "s3files:ClientMount" in s["Action"])


def _drop_depends_on(t: Template) -> None:
    del t["Resources"]["WriterFunction"]["DependsOn"]


def _depend_on_one_mount_target(t: Template) -> None:
    t["Resources"]["ReaderFunction"]["DependsOn"] = ["MountTargetA"]


def _mount_access_point_id(t: Template) -> None:
    _p(t, "WriterFunction")["FileSystemConfigs"][0]["Arn"] = tc.ref("AccessPoint")


def _nested_mount_path(t: Template) -> None:
    _p(t, "JanitorFunction")["FileSystemConfigs"][0]["LocalMountPath"] = "/mnt/s3data/nested"


def _one_subnet_only(t: Template) -> None:
    subnets = _p(t, "ReaderFunction")["VpcConfig"]["SubnetIds"]
    _p(t, "ReaderFunction")["VpcConfig"]["SubnetIds"] = subnets[:1]


def _add_root_access(t: Template) -> None:
    _writer_client_statement(t)["Action"].append("s3files:ClientRootAccess")


def _client_actions_on_any_resource(t: Template) -> None:
    _writer_client_statement(t)["Resource"] = "*"


def _drop_access_point_condition(t: Template) -> None:
    del _writer_client_statement(t)["Condition"]


def _reader_can_write(t: Template) -> None:
    statement = next(
        s for s in tc.role_statements(t, "ReaderFunction") if "s3files:ClientMount" in s["Action"]
    )
    statement["Action"] = ["s3files:ClientMount", "s3files:ClientWrite"]


def _attach_full_access_policy(t: Template) -> None:
    role = _p(t, "WriterFunction")["Role"]["Fn::GetAtt"][0]
    _p(t, role)["ManagedPolicyArns"].append("arn:aws:iam::aws:policy/AmazonS3FilesClientFullAccess")


def _s3_read_whole_account(t: Template) -> None:
    statement = next(s for s in tc.role_statements(t, "ReaderFunction") if "s3:GetObject" in s["Action"])
    statement["Resource"] = "arn:aws:s3:::*/*"


def _s3_read_whole_bucket(t: Template) -> None:
    statement = next(s for s in tc.role_statements(t, "UnzipFunction") if "s3:GetObject" in s["Action"])
    statement["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${DataBucket}/*"}


def _open_mount_targets_to_world(t: Template) -> None:
    _p(t, "MountTargetSecurityGroup")["SecurityGroupIngress"] = [
        {"Description": "oops", "IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "CidrIp": "0.0.0.0/0"}
    ]


def _nfs_from_vpc_cidr(t: Template) -> None:
    rule = _p(t, "MountTargetIngressFromFunctions")
    del rule["SourceSecurityGroupId"]
    rule["CidrIp"] = "10.0.0.0/8"


def _default_function_egress(t: Template) -> None:
    del _p(t, "FunctionSecurityGroup")["SecurityGroupEgress"]


def _undescribed_rule(t: Template) -> None:
    del _p(t, "MountTargetIngressFromFunctions")["Description"]


def _all_traffic_egress(t: Template) -> None:
    _p(t, "FunctionSecurityGroup")["SecurityGroupEgress"].append(
        {"Description": "everything", "IpProtocol": "-1", "CidrIp": "0.0.0.0/0"}
    )


def _suspend_versioning(t: Template) -> None:
    _p(t, "DataBucket")["VersioningConfiguration"]["Status"] = "Suspended"


def _allow_public_policy(t: Template) -> None:
    _p(t, "DataBucket")["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] = False


def _delete_bucket_with_stack(t: Template) -> None:
    t["Resources"]["DataBucket"]["DeletionPolicy"] = "Delete"


def _keep_noncurrent_versions(t: Template) -> None:
    rules = _p(t, "DataBucket")["LifecycleConfiguration"]["Rules"]
    _p(t, "DataBucket")["LifecycleConfiguration"]["Rules"] = [
        r for r in rules if "NoncurrentVersionExpiration" not in r
    ]


def _allow_plain_http(t: Template) -> None:
    _p(t, "DataBucketPolicy")["PolicyDocument"]["Statement"] = []


def _drop_source_arn(t: Template) -> None:
    trust = _p(t, "FileSystemRole")["AssumeRolePolicyDocument"]["Statement"][0]
    del trust["Condition"]["ArnLike"]


def _drop_eventbridge(t: Template) -> None:
    statements = _p(t, "FileSystemRole")["Policies"][0]["PolicyDocument"]["Statement"]
    statements[:] = [s for s in statements if "events:PutRule" not in s["Action"]]


def _bucket_by_name(t: Template) -> None:
    _p(t, "FileSystem")["Bucket"] = tc.ref("DataBucket")


def _uid_as_int(t: Template) -> None:
    _p(t, "AccessPoint")["PosixUser"]["Uid"] = 1000


def _root_uid(t: Template) -> None:
    _p(t, "AccessPoint")["PosixUser"]["Uid"] = "0"


def _world_writable_root(t: Template) -> None:
    _p(t, "AccessPoint")["RootDirectory"]["CreationPermissions"]["Permissions"] = "777"


def _no_creation_permissions(t: Template) -> None:
    del _p(t, "AccessPoint")["RootDirectory"]["CreationPermissions"]


def _hidden_root(t: Template) -> None:
    _p(t, "AccessPoint")["RootDirectory"]["Path"] = "/lambda/.data"


def _same_subnet_twice(t: Template) -> None:
    _p(t, "MountTargetB")["SubnetId"] = _p(t, "MountTargetA")["SubnetId"]


def _mount_target_in_function_group(t: Template) -> None:
    _p(t, "MountTargetB")["SecurityGroups"] = [tc.getatt("FunctionSecurityGroup", "GroupId")]


def _add_nat_gateway(t: Template) -> None:
    t["Resources"]["Nat"] = {"Type": "AWS::EC2::NatGateway", "Properties": {}}


def _no_dns_hostnames(t: Template) -> None:
    _p(t, "Vpc")["EnableDnsHostnames"] = False


def _endpoint_without_route_table(t: Template) -> None:
    _p(t, "S3GatewayEndpoint")["RouteTableIds"] = []


def _no_retention(t: Template) -> None:
    del _p(t, "ReaderLogGroup")["RetentionInDays"]


def _log_to_default_group(t: Template) -> None:
    del _p(t, "JanitorFunction")["LoggingConfig"]


def _narrow_mount_error_pattern(t: Template) -> None:
    _p(t, "WriterMountErrorsFilter")["FilterPattern"] = "MountError"


def _unencrypted_dlq(t: Template) -> None:
    _p(t, "DeadLetterQueue")["SqsManagedSseEnabled"] = False


def _writer_without_dlq(t: Template) -> None:
    del _p(t, "WriterFunction")["DeadLetterConfig"]


def _reserve_by_default(t: Template) -> None:
    _p(t, "WriterFunction")["ReservedConcurrentExecutions"] = 20


def _unreserved_reader(t: Template) -> None:
    del _p(t, "ReaderFunction")["ReservedConcurrentExecutions"]


def _single_flight_janitor(t: Template) -> None:
    _p(t, "JanitorFunction")["ReservedConcurrentExecutions"] = 1


def _reserve_zero(t: Template) -> None:
    _p(t, "WriterFunction")["ReservedConcurrentExecutions"] = "0"


def _unreserved_unzip(t: Template) -> None:
    del _p(t, "UnzipFunction")["ReservedConcurrentExecutions"]


def _read_only_unzip(t: Template) -> None:
    [statement] = [s for s in tc.role_statements(t, "UnzipFunction") if "s3files:ClientWrite" in s["Action"]]
    statement["Action"].remove("s3files:ClientWrite")


def _janitor_sized_for_the_writer_alone(t: Template) -> None:
    # The wiring before the unzip function: its 15-minute extractions would lose staging files.
    _p(t, "JanitorFunction")["Environment"]["Variables"]["COMMIT_TIMEOUT_SECONDS"] = "30"


def _janitor_outlives_its_probe(t: Template) -> None:
    for committer in ("WriterFunction", "UnzipFunction"):
        _p(t, committer)["Timeout"] = 30
    _p(t, "JanitorFunction")["Environment"]["Variables"]["COMMIT_TIMEOUT_SECONDS"] = "30"
    _p(t, "JanitorFunction")["Timeout"] = 100


def _sync_objects_statement(t: Template) -> dict[str, Any]:
    statements = _p(t, "FileSystemRole")["Policies"][0]["PolicyDocument"]["Statement"]
    return next(s for s in statements if "s3:DeleteObject" in s["Action"])


def _sync_role_deletes_versions(t: Template) -> None:
    _sync_objects_statement(t)["Action"].append("s3:DeleteObjectVersion")


def _sync_role_deletes_by_wildcard(t: Template) -> None:
    statements = _p(t, "FileSystemRole")["Policies"][0]["PolicyDocument"]["Statement"]
    statements.append({"Effect": "Allow", "Action": "S3:Delete*", "Resource": tc.getatt("DataBucket", "Arn")})


def _sync_role_allows_all_but_puts(t: Template) -> None:
    statements = _p(t, "FileSystemRole")["Policies"][0]["PolicyDocument"]["Statement"]
    statements.append(
        {"Effect": "Allow", "NotAction": "s3:PutObject*", "Resource": tc.getatt("DataBucket", "Arn")}
    )


def _policy_statements(t: Template) -> list[dict[str, Any]]:
    return _p(t, "FileSystemPolicy")["Policy"]["Statement"]


def _no_file_system_policy(t: Template) -> None:
    del t["Resources"]["FileSystemPolicy"]


def _mount_without_access_point(t: Template) -> None:
    _policy_statements(t)[:] = [s for s in _policy_statements(t) if "Condition" not in s]


def _root_through_access_points(t: Template) -> None:
    _policy_statements(t)[:] = [s for s in _policy_statements(t) if "Condition" in s]


def _null_condition_inverted(t: Template) -> None:
    for s in _policy_statements(t):
        if "Condition" in s:
            s["Condition"]["Null"]["s3files:AccessPointArn"] = "false"


def _policy_allows_everyone(t: Template) -> None:
    _policy_statements(t).append(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "s3files:ClientMount",
            "Resource": tc.getatt("FileSystem", "FileSystemArn"),
        }
    )


def _mount_target_before_policy(t: Template) -> None:
    del t["Resources"]["MountTargetA"]["DependsOn"]


def _secondary_gids_by_default(t: Template) -> None:
    _p(t, "AccessPoint")["PosixUser"]["SecondaryGids"] = ["1001"]


def _secondary_gids_dropped(t: Template) -> None:
    del _p(t, "AccessPoint")["PosixUser"]["SecondaryGids"]


def _secondary_gid_out_of_range(t: Template) -> None:
    t["Parameters"]["PosixSecondaryGids"] = "4294967296"
    _p(t, "AccessPoint")["PosixUser"]["SecondaryGids"] = ["4294967296"]


def _seventeen_secondary_gids(t: Template) -> None:
    gids = [str(1001 + i) for i in range(17)]
    t["Parameters"]["PosixSecondaryGids"] = ",".join(gids)
    _p(t, "AccessPoint")["PosixUser"]["SecondaryGids"] = gids


def _gid_above_range(t: Template) -> None:
    _p(t, "AccessPoint")["PosixUser"]["Gid"] = "4294967296"


def _root_path_over_100_characters(t: Template) -> None:
    _p(t, "AccessPoint")["RootDirectory"]["Path"] = "/" + "a" * 100


def _https_to_anywhere(t: Template) -> None:
    rule = _p(t, "FunctionEgressToS3PrefixList")
    del rule["DestinationPrefixListId"]
    rule["CidrIp"] = "0.0.0.0/0"


def _https_to_another_prefix_list(t: Template) -> None:
    _p(t, "FunctionEgressToS3PrefixList")["DestinationPrefixListId"] = "pl-0123456789abcdef0"


def _endpoint_default_policy(t: Template) -> None:
    del _p(t, "S3GatewayEndpoint")["PolicyDocument"]


def _endpoint_to_any_bucket(t: Template) -> None:
    _p(t, "S3GatewayEndpoint")["PolicyDocument"]["Statement"][0]["Resource"] = "arn:aws:s3:::*/*"


def _endpoint_allows_writes(t: Template) -> None:
    _p(t, "S3GatewayEndpoint")["PolicyDocument"]["Statement"][0]["Action"].append("s3:PutObject")


def _no_prefix_list_lookup(t: Template) -> None:
    del t["Resources"]["S3PrefixList"]


def _lookup_in_the_vpc(t: Template) -> None:
    _p(t, tc.PREFIX_LIST_LOOKUP)["VpcConfig"] = _p(t, "WriterFunction")["VpcConfig"]


def _lookup_may_describe_everything(t: Template) -> None:
    [statement] = tc.role_statements(t, tc.PREFIX_LIST_LOOKUP)
    statement["Action"] = "ec2:Describe*"


def _lookup_of_another_list(t: Template) -> None:
    _p(t, "S3PrefixList")["PrefixListName"] = {"Fn::Sub": "com.amazonaws.${AWS::Region}.dynamodb"}


def _lookup_logs_kept_forever(t: Template) -> None:
    group = _p(t, tc.PREFIX_LIST_LOOKUP)["LoggingConfig"]["LogGroup"]["Ref"]
    del _p(t, group)["RetentionInDays"]


def _long_janitor(t: Template) -> None:
    _p(t, "JanitorFunction")["Timeout"] = 900


def _daily_janitor(t: Template) -> None:
    for rid in tc.of_type(t, "AWS::Events::Rule"):
        _p(t, rid)["ScheduleExpression"] = "rate(1 day)"


def _young_staging_files_removed(t: Template) -> None:
    _p(t, "JanitorFunction")["Environment"]["Variables"]["STAGING_MAX_AGE_SECONDS"] = "10"


def _mount_optional(t: Template) -> None:
    _p(t, "WriterFunction")["Environment"]["Variables"]["REQUIRE_MOUNT"] = "false"


def _mount_root_elsewhere(t: Template) -> None:
    _p(t, "ReaderFunction")["Environment"]["Variables"]["MOUNT_ROOT"] = "/mnt/other"


def _silent_alarm(t: Template) -> None:
    del _p(t, "WriterErrorsAlarm")["AlarmDescription"]


def _no_pending_exports_alarm(t: Template) -> None:
    del t["Resources"]["PendingExportsAlarm"]


def _duration_over_timeout(t: Template) -> None:
    _p(t, "WriterDurationAlarm")["Threshold"] = 31000


def _drop_output(t: Template) -> None:
    del t["Outputs"]["CommittedFilesS3Prefix"]


def _no_reader_throttles_alarm(t: Template) -> None:
    del t["Resources"]["ReaderThrottlesAlarm"]


def _janitor_errors_alarm_on_the_writer(t: Template) -> None:
    _p(t, "JanitorErrorsAlarm")["Dimensions"] = [{"Name": "FunctionName", "Value": tc.ref("WriterFunction")}]


def _dashboard_parts(t: Template) -> list[dict[str, str]]:
    parts: list[dict[str, str]] = _p(t, "Dashboard")["DashboardBody"]["Fn::Join"][1]
    return parts


def _dashboard_without_the_unzip_row(t: Template) -> None:
    parts = _dashboard_parts(t)
    parts[:] = [p for p in parts if "${UnzipFunction}" not in str(p)]


def _dashboard_in_the_shared_namespace(t: Template) -> None:
    for part in _dashboard_parts(t):
        if isinstance(part, dict):
            part["Fn::Sub"] = part["Fn::Sub"].replace("S3FilesLambda/${AWS::StackName}", "S3FilesLambda")


def _dashboard_by_function_name_dimension(t: Template) -> None:
    first = _dashboard_parts(t)[0]
    first["Fn::Sub"] = first["Fn::Sub"].replace(
        '"CommitBytes","service","writer"', '"CommitBytes","FunctionName","writer"'
    )


def _dashboard_of_a_service_that_is_no_function(t: Template) -> None:
    first = _dashboard_parts(t)[0]
    first["Fn::Sub"] = first["Fn::Sub"].replace(
        '"StagingFilesRemoved","service","janitor"', '"StagingFilesRemoved","service","sweeper"'
    )


def _dashboard_without_extraction(t: Template) -> None:
    first = _dashboard_parts(t)[0]
    first["Fn::Sub"] = first["Fn::Sub"].replace('"ExtractedFiles"', '"ExtractedFilez"')


def _dashboard_body_not_json(t: Template) -> None:
    _dashboard_parts(t).pop()  # the closing "]}"


def _dashboard_without_region(t: Template) -> None:
    first = _dashboard_parts(t)[0]
    first["Fn::Sub"] = first["Fn::Sub"].replace('"region":"${AWS::Region}",', "", 1)


def _no_dashboard_url(t: Template) -> None:
    del t["Outputs"]["DashboardUrl"]


def _writer_reads_directly(t: Template) -> None:
    # Direct reads and their grant, consistent with each other, for a function that never reads.
    _p(t, "WriterFunction")["FileSystemConfigs"][0]["S3FilesConfig"]["DirectS3Read"] = "AUTO"
    grant = next(s for s in tc.role_statements(t, "ReaderFunction") if "s3:GetObject" in s["Action"])
    role = _p(t, "WriterFunction")["Role"]["Fn::GetAtt"][0]
    _p(t, role)["Policies"][0]["PolicyDocument"]["Statement"].append(copy.deepcopy(grant))


def _functions_before_the_ingress_rule(t: Template) -> None:
    for fn in tc.FUNCTIONS:
        depends = t["Resources"][fn]["DependsOn"]
        t["Resources"][fn]["DependsOn"] = [d for d in depends if d != "MountTargetIngressFromFunctions"]


def _active_tracing_in_the_created_vpc(t: Template) -> None:
    t["Parameters"]["Tracing"] = "Active"
    for fn in tc.FUNCTIONS:
        _p(t, fn)["TracingConfig"] = {"Mode": "Active"}


def _reader_traced_otherwise(t: Template) -> None:
    _p(t, "ReaderFunction")["TracingConfig"] = {"Mode": "PassThrough"}


def _writer_on_x86(t: Template) -> None:
    _p(t, "WriterFunction")["Architectures"] = ["x86_64"]


def _layer_for_x86_only(t: Template) -> None:
    for layer in tc.of_type(t, "AWS::Lambda::LayerVersion"):
        _p(t, layer)["CompatibleArchitectures"] = ["x86_64"]


def _upload_rule(t: Template) -> dict[str, Any]:
    return _p(t, "UploadRule")


def _any_key_extracted(t: Template) -> None:
    _upload_rule(t)["EventPattern"]["detail"]["object"]["key"] = [{"wildcard": "lambda/*"}]


def _any_bucket_extracted(t: Template) -> None:
    del _upload_rule(t)["EventPattern"]["detail"]["bucket"]


def _rule_retries_for_a_day(t: Template) -> None:
    del _upload_rule(t)["Targets"][0]["RetryPolicy"]


def _undelivered_uploads_dropped(t: Template) -> None:
    del _upload_rule(t)["Targets"][0]["DeadLetterConfig"]


def _any_rule_invokes_unzip(t: Template) -> None:
    del _p(t, "UploadRulePermission")["SourceArn"]


def _any_rule_sends_to_the_dlq(t: Template) -> None:
    del _p(t, "DeadLetterQueuePolicy")["PolicyDocument"]["Statement"][0]["Condition"]


def _unzip_never_retried(t: Template) -> None:
    _p(t, "UnzipFunctionEventInvokeConfig")["MaximumRetryAttempts"] = 0


def _unzip_events_kept_six_hours(t: Template) -> None:
    del _p(t, "UnzipFunctionEventInvokeConfig")["MaximumEventAgeInSeconds"]


def _unzip_maps_another_root(t: Template) -> None:
    _p(t, "UnzipFunction")["Environment"]["Variables"]["ACCESS_POINT_ROOT_PATH"] = "/other"


BROKEN: list[Case] = [
    (tc.check_function_mounts, _drop_depends_on, "create-vpc"),
    (tc.check_function_mounts, _depend_on_one_mount_target, "existing-vpc"),
    (tc.check_function_mounts, _mount_access_point_id, "create-vpc"),
    (tc.check_function_mounts, _nested_mount_path, "create-vpc"),
    (tc.check_function_mounts, _one_subnet_only, "existing-vpc"),
    (tc.check_function_iam, _add_root_access, "create-vpc"),
    (tc.check_function_iam, _client_actions_on_any_resource, "create-vpc"),
    (tc.check_function_iam, _drop_access_point_condition, "existing-vpc"),
    (tc.check_function_iam, _reader_can_write, "create-vpc"),
    (tc.check_function_iam, _attach_full_access_policy, "create-vpc"),
    (tc.check_function_iam, _s3_read_whole_account, "create-vpc"),
    (tc.check_function_iam, _s3_read_whole_bucket, "existing-vpc"),
    (tc.check_security_groups, _open_mount_targets_to_world, "create-vpc"),
    (tc.check_security_groups, _nfs_from_vpc_cidr, "existing-vpc"),
    (tc.check_security_groups, _default_function_egress, "create-vpc"),
    (tc.check_security_groups, _undescribed_rule, "create-vpc"),
    (tc.check_security_groups, _all_traffic_egress, "no-direct-reads"),
    (tc.check_bucket, _suspend_versioning, "create-vpc"),
    (tc.check_bucket, _allow_public_policy, "existing-vpc"),
    (tc.check_bucket, _delete_bucket_with_stack, "create-vpc"),
    (tc.check_bucket, _keep_noncurrent_versions, "create-vpc"),
    (tc.check_bucket, _allow_plain_http, "create-vpc"),
    (tc.check_file_system, _drop_source_arn, "create-vpc"),
    (tc.check_file_system, _drop_eventbridge, "existing-vpc"),
    (tc.check_file_system, _bucket_by_name, "create-vpc"),
    (tc.check_access_point, _uid_as_int, "create-vpc"),
    (tc.check_access_point, _root_uid, "create-vpc"),
    (tc.check_access_point, _world_writable_root, "create-vpc"),
    (tc.check_access_point, _no_creation_permissions, "create-vpc"),
    (tc.check_access_point, _hidden_root, "create-vpc"),
    (tc.check_mount_targets, _same_subnet_twice, "existing-vpc"),
    (tc.check_mount_targets, _mount_target_in_function_group, "create-vpc"),
    (tc.check_network, _add_nat_gateway, "create-vpc"),
    (tc.check_network, _no_dns_hostnames, "create-vpc"),
    (tc.check_network, _endpoint_without_route_table, "create-vpc"),
    (tc.check_logging, _no_retention, "create-vpc"),
    (tc.check_logging, _log_to_default_group, "create-vpc"),
    (tc.check_logging, _narrow_mount_error_pattern, "create-vpc"),
    (tc.check_dead_letter, _unencrypted_dlq, "create-vpc"),
    (tc.check_dead_letter, _writer_without_dlq, "create-vpc"),
    (tc.check_concurrency, _reserve_by_default, "create-vpc"),
    (tc.check_concurrency, _unreserved_reader, "existing-vpc"),
    (tc.check_concurrency, _single_flight_janitor, "create-vpc"),
    (tc.check_concurrency, _single_flight_janitor, "existing-vpc"),
    (tc.check_concurrency, _reserve_zero, "existing-vpc"),
    (tc.check_concurrency, _unreserved_unzip, "existing-vpc"),
    (tc.check_function_iam, _read_only_unzip, "create-vpc"),
    (tc.check_janitor, _janitor_sized_for_the_writer_alone, "create-vpc"),
    (tc.check_janitor, _janitor_outlives_its_probe, "create-vpc"),
    (tc.check_file_system, _sync_role_deletes_versions, "create-vpc"),
    (tc.check_file_system, _sync_role_deletes_by_wildcard, "existing-vpc"),
    (tc.check_file_system, _sync_role_allows_all_but_puts, "create-vpc"),
    (tc.check_file_system_policy, _no_file_system_policy, "create-vpc"),
    (tc.check_file_system_policy, _mount_without_access_point, "existing-vpc"),
    (tc.check_file_system_policy, _root_through_access_points, "create-vpc"),
    (tc.check_file_system_policy, _null_condition_inverted, "create-vpc"),
    (tc.check_file_system_policy, _policy_allows_everyone, "create-vpc"),
    (tc.check_file_system_policy, _mount_target_before_policy, "existing-vpc"),
    (tc.check_access_point, _secondary_gids_by_default, "create-vpc"),
    (tc.check_access_point, _secondary_gids_dropped, "existing-vpc"),
    (tc.check_access_point, _secondary_gid_out_of_range, "existing-vpc"),
    (tc.check_access_point, _seventeen_secondary_gids, "existing-vpc"),
    (tc.check_access_point, _gid_above_range, "create-vpc"),
    (tc.check_access_point, _root_path_over_100_characters, "create-vpc"),
    (tc.check_security_groups, _https_to_anywhere, "create-vpc"),
    (tc.check_security_groups, _https_to_anywhere, "existing-vpc"),
    (tc.check_security_groups, _https_to_another_prefix_list, "existing-vpc"),
    (tc.check_network, _endpoint_default_policy, "create-vpc"),
    (tc.check_network, _endpoint_to_any_bucket, "create-vpc"),
    (tc.check_network, _endpoint_allows_writes, "no-direct-reads"),
    (tc.check_prefix_list_lookup, _no_prefix_list_lookup, "create-vpc"),
    (tc.check_prefix_list_lookup, _lookup_in_the_vpc, "create-vpc"),
    (tc.check_prefix_list_lookup, _lookup_may_describe_everything, "create-vpc"),
    (tc.check_prefix_list_lookup, _lookup_of_another_list, "create-vpc"),
    (tc.check_prefix_list_lookup, _lookup_logs_kept_forever, "create-vpc"),
    (tc.check_janitor, _long_janitor, "create-vpc"),
    (tc.check_janitor, _daily_janitor, "create-vpc"),
    (tc.check_janitor, _young_staging_files_removed, "create-vpc"),
    (tc.check_environment, _mount_optional, "create-vpc"),
    (tc.check_environment, _mount_root_elsewhere, "create-vpc"),
    (tc.check_alarms, _silent_alarm, "create-vpc"),
    (tc.check_alarms, _no_pending_exports_alarm, "create-vpc"),
    (tc.check_alarms, _duration_over_timeout, "create-vpc"),
    (tc.check_alarms, _no_reader_throttles_alarm, "create-vpc"),
    (tc.check_alarms, _janitor_errors_alarm_on_the_writer, "existing-vpc"),
    (tc.check_dashboard, _dashboard_without_the_unzip_row, "create-vpc"),
    (tc.check_dashboard, _dashboard_in_the_shared_namespace, "create-vpc"),
    (tc.check_dashboard, _dashboard_by_function_name_dimension, "existing-vpc"),
    (tc.check_dashboard, _dashboard_of_a_service_that_is_no_function, "create-vpc"),
    (tc.check_dashboard, _dashboard_without_extraction, "create-vpc"),
    (tc.check_dashboard, _dashboard_body_not_json, "create-vpc"),
    (tc.check_dashboard, _dashboard_without_region, "create-vpc"),
    (tc.check_dashboard, _no_dashboard_url, "create-vpc"),
    (tc.check_outputs, _drop_output, "create-vpc"),
    (tc.check_function_iam, _writer_reads_directly, "create-vpc"),
    (tc.check_network_order, _functions_before_the_ingress_rule, "existing-vpc"),
    (tc.check_tracing, _active_tracing_in_the_created_vpc, "create-vpc"),
    (tc.check_tracing, _reader_traced_otherwise, "existing-vpc"),
    (tc.check_architecture, _writer_on_x86, "existing-vpc"),
    (tc.check_architecture, _layer_for_x86_only, "create-vpc"),
    (tc.check_upload_pipeline, _any_key_extracted, "create-vpc"),
    (tc.check_upload_pipeline, _any_bucket_extracted, "existing-vpc"),
    (tc.check_upload_pipeline, _rule_retries_for_a_day, "create-vpc"),
    (tc.check_upload_pipeline, _undelivered_uploads_dropped, "create-vpc"),
    (tc.check_upload_pipeline, _any_rule_invokes_unzip, "create-vpc"),
    (tc.check_upload_pipeline, _any_rule_sends_to_the_dlq, "existing-vpc"),
    (tc.check_upload_pipeline, _unzip_never_retried, "create-vpc"),
    (tc.check_upload_pipeline, _unzip_events_kept_six_hours, "create-vpc"),
    (tc.check_upload_pipeline, _unzip_maps_another_root, "no-direct-reads"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("check", tc.CHECKS, ids=lambda c: c.__name__)
def test_template_satisfies(
    check: Callable[[Template], list[str]], mode: str, resolved: dict[str, Template]
) -> None:
    assert check(resolved[mode]) == []


def breakages(cases: list[Case]) -> pytest.MarkDecorator:
    """Parametrize a test over (check, breakage, mode) cases, named after check and breakage."""
    ids = [f"{c.__name__}-{b.__name__.lstrip('_')}" for c, b, _ in cases]
    return pytest.mark.parametrize(("check", "breakage", "mode"), cases, ids=ids)


@breakages(BROKEN)
def test_check_catches(
    check: Callable[[Template], list[str]],
    breakage: Callable[[Template], None],
    mode: str,
    resolved: dict[str, Template],
) -> None:
    broken = copy.deepcopy(resolved[mode])
    breakage(broken)
    assert check(broken) != []


def test_every_check_is_exercised_by_a_breakage() -> None:
    assert {c for c, _, _ in BROKEN} == set(tc.CHECKS)


def test_existing_vpc_uses_the_given_subnets(resolved: dict[str, Template]) -> None:
    given = MODES["existing-vpc"]["SubnetIds"].split(",")
    template = resolved["existing-vpc"]
    assert [_p(template, mt)["SubnetId"] for mt in ("MountTargetA", "MountTargetB")] == given
    assert template["Outputs"]["FunctionSubnetIds"]["Value"] == ",".join(given)


def test_created_vpc_only_without_vpc_id(resolved: dict[str, Template]) -> None:
    created = {"Vpc", "PrivateSubnetA", "PrivateSubnetB", "PrivateRouteTable", "S3GatewayEndpoint"}
    assert created <= resolved["create-vpc"]["Resources"].keys()
    assert not created & resolved["existing-vpc"]["Resources"].keys()


def _direct_read_settings(template: Template) -> set[str]:
    return {_p(template, fn)["FileSystemConfigs"][0]["S3FilesConfig"]["DirectS3Read"] for fn in tc.FUNCTIONS}


def test_https_egress_goes_only_to_the_s3_prefix_list(resolved: dict[str, Template]) -> None:
    expected = {
        "create-vpc": tc.getatt("S3PrefixList", "PrefixListId"),  # looked up by the stack
        "chosen-azs": tc.getatt("S3PrefixList", "PrefixListId"),
        "existing-vpc": MODES["existing-vpc"]["S3PrefixListId"],
    }
    for mode, template in resolved.items():
        rules = [*_p(template, "FunctionSecurityGroup")["SecurityGroupEgress"]]
        rules += [_p(template, rid) for rid in tc.of_type(template, "AWS::EC2::SecurityGroupEgress")]
        https = [r for r in rules if r["FromPort"] <= 443 <= r["ToPort"]]
        assert [r.get("DestinationPrefixListId") for r in https] == (
            [expected[mode]] if mode in expected else []
        )
        assert not [r for r in https if r.keys() & {"CidrIp", "CidrIpv6", "DestinationSecurityGroupId"}]


def test_existing_vpc_without_prefix_list_turns_direct_reads_off(resolved: dict[str, Template]) -> None:
    # DirectS3Read is AUTO in that mode, but no rule may let HTTPS out: the functions get DISABLED,
    # no s3:GetObject, and the stack no lookup (an existing VPC may have no route to the EC2 API).
    template = resolved["existing-vpc-no-prefix-list"]
    assert template["Parameters"]["DirectS3Read"] == "AUTO"
    assert _direct_read_settings(template) == {"DISABLED"}
    statements = [s for fn in tc.FUNCTIONS for s in tc.role_statements(template, fn)]
    assert not [s for s in statements if any(str(a).startswith("s3:") for a in tc.as_list(s["Action"]))]
    assert not {"S3PrefixList", tc.PREFIX_LIST_LOOKUP} & template["Resources"].keys()
    assert _direct_read_settings(resolved["existing-vpc"]) == {"AUTO", "DISABLED"}  # the janitor's


def test_default_parameters_reserve_no_concurrency(resolved: dict[str, Template]) -> None:
    reserved = [
        rid
        for rid, resource in resolved["create-vpc"]["Resources"].items()
        if "ReservedConcurrentExecutions" in resource.get("Properties", {})
    ]
    assert reserved == []


def test_a_reservation_reaches_the_functions_that_serve_requests(resolved: dict[str, Template]) -> None:
    template = resolved["existing-vpc"]
    reserved = {
        rid: props["ReservedConcurrentExecutions"]
        for rid in tc.of_type(template, "AWS::Lambda::Function")
        if "ReservedConcurrentExecutions" in (props := _p(template, rid))
    }
    assert reserved == dict.fromkeys(tc.SERVING, MODES["existing-vpc"]["ReservedConcurrency"])


def test_secondary_gids_only_when_given(resolved: dict[str, Template]) -> None:
    assert "SecondaryGids" not in _p(resolved["create-vpc"], "AccessPoint")["PosixUser"]
    given = MODES["existing-vpc"]["PosixSecondaryGids"].split(",")
    assert _p(resolved["existing-vpc"], "AccessPoint")["PosixUser"]["SecondaryGids"] == given


def test_kms_key_encrypts_bucket_and_file_system(resolved: dict[str, Template]) -> None:
    key = MODES["existing-vpc"]["KmsKeyArn"]
    template = resolved["existing-vpc"]
    [sse] = _p(template, "DataBucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
    assert _p(template, "FileSystem")["KmsKeyId"] == key
    assert "KmsKeyId" not in _p(resolved["create-vpc"], "FileSystem")


def test_alarm_topic_is_notified_only_when_given(resolved: dict[str, Template]) -> None:
    topic = MODES["existing-vpc"]["AlarmTopicArn"]
    for mode, expected in (("existing-vpc", [topic]), ("create-vpc", None)):
        alarms = tc.of_type(resolved[mode], "AWS::CloudWatch::Alarm")
        assert {str(a["Properties"].get("AlarmActions")) for a in alarms.values()} == {str(expected)}


def _passed(t: Template) -> dict[str, Any]:
    """The parameters template.yaml passes to the functions stack (SAM, before the transform)."""
    return _p(t, NESTED_ID)["Parameters"]


def _nest_without_depends_on(t: Template) -> None:
    del t["Resources"][NESTED_ID]["DependsOn"]


def _nest_after_one_mount_target(t: Template) -> None:
    t["Resources"][NESTED_ID]["DependsOn"] = ["MountTargetB"]


def _pass_the_access_point_id(t: Template) -> None:
    _passed(t)["AccessPointArn"] = tc.ref("AccessPoint")


def _pass_the_file_system_as_access_point(t: Template) -> None:
    _passed(t)["AccessPointArn"] = tc.getatt("FileSystem", "FileSystemArn")


def _pass_another_file_system(t: Template) -> None:
    _passed(t)["FileSystemArn"] = "arn:aws:s3files:us-east-1:123456789012:file-system/fs-0123456789abcdef0"


def _pass_another_bucket(t: Template) -> None:
    _passed(t)["BucketName"] = "someone-elses-bucket"


def _pass_the_mount_target_group(t: Template) -> None:
    _passed(t)["SecurityGroupIds"] = tc.getatt("MountTargetSecurityGroup", "GroupId")


def _pass_one_subnet(t: Template) -> None:
    _passed(t)["SubnetIds"] = tc.ref("PrivateSubnetA")


def _pass_direct_reads_through(t: Template) -> None:
    _passed(t)["DirectS3Read"] = tc.ref("DirectS3Read")


def _reexport_the_reader_as_the_writer(t: Template) -> None:
    t["Outputs"]["WriterFunctionName"]["Value"] = tc.getatt(NESTED_ID, "Outputs.ReaderFunctionName")


def _reexport_the_writer_logs_as_unzip_logs(t: Template) -> None:
    t["Outputs"]["UnzipLogGroupName"]["Value"] = tc.getatt(NESTED_ID, "Outputs.WriterLogGroupName")


def _nest_before_the_ingress_rule(t: Template) -> None:
    t["Resources"][NESTED_ID]["DependsOn"] = ["MountTargetA", "MountTargetB"]


def _nest_before_the_https_egress_rule(t: Template) -> None:
    _passed(t)["DirectS3Read"] = {"Fn::If": ["HasDirectReads", tc.ref("DirectS3Read"), "DISABLED"]}


def _pass_x86_whatever_the_architecture(t: Template) -> None:
    _passed(t)["Architecture"] = "x86_64"


def _forget_to_reexport_unzip(t: Template) -> None:
    del t["Outputs"]["UnzipFunctionArn"]


NESTING_BROKEN: list[Case] = [
    (tc.check_function_mounts, _nest_without_depends_on, "create-vpc"),
    (tc.check_function_mounts, _nest_after_one_mount_target, "existing-vpc"),
    (tc.check_function_mounts, _pass_the_access_point_id, "create-vpc"),
    (tc.check_function_iam, _pass_the_access_point_id, "existing-vpc"),
    (tc.check_function_mounts, _pass_the_file_system_as_access_point, "no-direct-reads"),
    (tc.check_function_iam, _pass_another_file_system, "create-vpc"),
    (tc.check_function_iam, _pass_another_bucket, "create-vpc"),
    (tc.check_function_mounts, _pass_the_mount_target_group, "existing-vpc"),
    (tc.check_function_mounts, _pass_one_subnet, "create-vpc"),
    (tc.check_outputs, _reexport_the_reader_as_the_writer, "existing-vpc"),
    (tc.check_outputs, _reexport_the_writer_logs_as_unzip_logs, "create-vpc"),
    (tc.check_outputs, _forget_to_reexport_unzip, "create-vpc"),
    (tc.check_network_order, _nest_before_the_ingress_rule, "existing-vpc-no-prefix-list"),
    (tc.check_network_order, _nest_before_the_https_egress_rule, "create-vpc"),
    (tc.check_architecture, _pass_x86_whatever_the_architecture, "existing-vpc"),
    # Direct reads left on in an existing VPC without S3PrefixListId, where no HTTPS egress exists.
    (tc.check_security_groups, _pass_direct_reads_through, "existing-vpc-no-prefix-list"),
]


@breakages(NESTING_BROKEN)
def test_check_catches_a_broken_nesting(
    check: Callable[[Template], list[str]],
    breakage: Callable[[Template], None],
    mode: str,
    sam_template: Template,
    functions_transformed: Template,
) -> None:
    broken = copy.deepcopy(sam_template)
    breakage(broken)
    overrides = MODES[mode]
    assert check(compose(resolve(transform(broken, overrides), overrides), functions_transformed)) != []


@pytest.mark.parametrize("link", sorted(LINKS))
def test_a_link_the_root_does_not_pass_fails_the_stack(
    link: str, sam_template: Template, functions_transformed: Template
) -> None:
    # The five links have no default: CloudFormation refuses the nested stack without them.
    broken = copy.deepcopy(sam_template)
    del _passed(broken)[link]
    root = resolve(transform(broken, {}), {})
    with pytest.raises(ValueError, match=f"parameter {link} has no value and no Default"):
        compose(root, functions_transformed)


def test_created_subnets_take_the_chosen_az_ids_else_fn_getazs(resolved: dict[str, Template]) -> None:
    chosen = MODES["chosen-azs"]
    for subnet, parameter, index in (
        ("PrivateSubnetA", "AvailabilityZoneIdA", 0),
        ("PrivateSubnetB", "AvailabilityZoneIdB", 1),
    ):
        picked = _p(resolved["chosen-azs"], subnet)
        assert picked.get("AvailabilityZoneId") == chosen[parameter]
        assert "AvailabilityZone" not in picked  # CloudFormation takes one or the other
        default = _p(resolved["create-vpc"], subnet)
        assert "AvailabilityZoneId" not in default
        assert default["AvailabilityZone"] == {"Fn::Select": [index, {"Fn::GetAZs": ""}]}


@pytest.mark.parametrize("check", tc.SPEC_CHECKS, ids=lambda c: c.__name__)
def test_the_template_as_written_satisfies(
    check: Callable[[Template], list[str]], sam_template: Template
) -> None:
    assert check(sam_template) == []


def _vpc_cidr_any_range(t: Template) -> None:
    t["Parameters"]["VpcCidr"]["AllowedPattern"] = (
        r"^(10|172|192)\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}/(1[6-9]|2[0-2])$"
    )


def _vpc_cidr_without_172_31(t: Template) -> None:
    spec = t["Parameters"]["VpcCidr"]
    spec["AllowedPattern"] = spec["AllowedPattern"].replace("3[01]", "30")


SPEC_BROKEN = [(tc.check_vpc_cidr, _vpc_cidr_any_range), (tc.check_vpc_cidr, _vpc_cidr_without_172_31)]


@pytest.mark.parametrize(("check", "breakage"), SPEC_BROKEN, ids=lambda f: f.__name__.lstrip("_"))
def test_check_of_the_template_as_written_catches(
    check: Callable[[Template], list[str]], breakage: Callable[[Template], None], sam_template: Template
) -> None:
    broken = copy.deepcopy(sam_template)
    breakage(broken)
    assert check(broken) != []
    assert {c for c, _ in SPEC_BROKEN} == set(tc.SPEC_CHECKS)


def test_active_tracing_in_the_created_vpc_passes_with_an_x_ray_endpoint(
    resolved: dict[str, Template],
) -> None:
    template = copy.deepcopy(resolved["create-vpc"])
    _active_tracing_in_the_created_vpc(template)
    assert tc.check_tracing(template) != []
    template["Resources"]["XRayEndpoint"] = {
        "Type": "AWS::EC2::VPCEndpoint",
        "Properties": {"ServiceName": {"Fn::Sub": "com.amazonaws.${AWS::Region}.xray"}},
    }
    assert tc.check_tracing(template) == []
