/**
 * The schema both databases share: the entities (what typeorm knows of each
 * table) and the migrations that create them. The entities describe the
 * schema after the last migration; a test checks that they agree.
 */
import {
  AccessTokenEntity,
  ApiUserEntity,
  CustomerEntity,
  InvitationEntity,
  OAuthClientEntity,
  OrganizationEntity,
  OrgMembershipEntity,
  ProductEntity,
  ProductMembershipEntity,
  UserEntity,
} from './accounts.js';
import {
  DeviceCredentialEntity,
  DeviceEntity,
  DeviceGroupEntity,
  DeviceGroupMemberEntity,
  FirmwareVersionEntity,
  GroupReleaseEntity,
  IntegrationEntity,
  OtaJobEntity,
  RolloutEntity,
  SimCardEntity,
} from './fleet.js';
import { AuditLogEntity, DeviceDayEntity, ErrorReportEntity, UsageDailyEntity, VitalsHistoryEntity, VitalsLatestEntity } from './telemetry.js';
import { Initial1732406400000 } from './migrations/1732406400000-initial.js';
import { Usage1763856000000 } from './migrations/1763856000000-usage.js';
import { Ota1795392000000 } from './migrations/1795392000000-ota.js';
import { Orgs1795478400000 } from './migrations/1795478400000-orgs.js';
import { BillingAccountEntity, OrgBilledUserEntity, ProductTransferEntity } from './accounts.js';
import { DataOpsDailyEntity, SimDataDailyEntity } from './telemetry.js';
import { Signin1795435200000 } from './migrations/1795435200000-signin.js';
import { IntegrationOwners1795521600000 } from './migrations/1795521600000-integration-owners.js';
import { WebhookDefaults1795564800000 } from './migrations/1795564800000-webhook-defaults.js';
import { Retention1795651200000 } from './migrations/1795651200000-retention.js';
import { UserClaimCodes1795737600000 } from './migrations/1795737600000-user-claim-codes.js';
import { DeviceIp1795824000000 } from './migrations/1795824000000-device-ip.js';
import { ProductIds1795910400000 } from './migrations/1795910400000-product-ids.js';
import { ClaimCodeEntity, CustomerUserEntity, OAuthCodeEntity } from './signin.js';

export const ENTITIES = [
  UserEntity,
  OrganizationEntity,
  OrgMembershipEntity,
  ProductEntity,
  ProductMembershipEntity,
  InvitationEntity,
  CustomerEntity,
  ApiUserEntity,
  OAuthClientEntity,
  AccessTokenEntity,
  DeviceEntity,
  DeviceCredentialEntity,
  DeviceGroupEntity,
  DeviceGroupMemberEntity,
  SimCardEntity,
  FirmwareVersionEntity,
  IntegrationEntity,
  GroupReleaseEntity,
  RolloutEntity,
  OtaJobEntity,
  VitalsLatestEntity,
  VitalsHistoryEntity,
  ErrorReportEntity,
  AuditLogEntity,
  UsageDailyEntity,
  DeviceDayEntity,
  ProductTransferEntity,
  OrgBilledUserEntity,
  BillingAccountEntity,
  DataOpsDailyEntity,
  SimDataDailyEntity,
  OAuthCodeEntity,
  CustomerUserEntity,
  ClaimCodeEntity,
];

/** In order; never edit one that has shipped, add the next. */
export const MIGRATIONS = [Initial1732406400000, Usage1763856000000, Ota1795392000000, Signin1795435200000, Orgs1795478400000, IntegrationOwners1795521600000, WebhookDefaults1795564800000, Retention1795651200000, UserClaimCodes1795737600000, DeviceIp1795824000000, ProductIds1795910400000];

/** The table typeorm records applied migrations in. */
export const MIGRATIONS_TABLE = 'migrations';
