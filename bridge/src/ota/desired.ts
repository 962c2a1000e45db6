/**
 * Which version a device should run: pure, from the device's facts and its
 * product's releases. Precedence (Particle's): the device's lock, then the
 * versions released to its groups (the highest, when its groups disagree),
 * then the product default. Development devices take no release; an explicit
 * lock still applies to them (it is an operator's choice for that device).
 * A quarantined device takes nothing, as on Particle, until its team releases it.
 */
import type { DeviceTarget, ProductReleases } from '../store/store.js';

export interface Desired {
  version: number;
  by: 'lock' | 'group' | 'default';
}

export function desiredVersion(t: DeviceTarget, releases: Pick<ProductReleases, 'productDefault'>): Desired | null {
  if (t.quarantined) return null;
  if (t.lockedFirmware !== null) return { version: t.lockedFirmware, by: 'lock' };
  if (t.development) return null;
  if (t.groupVersions.length > 0) return { version: Math.max(...t.groupVersions), by: 'group' };
  return releases.productDefault !== null ? { version: releases.productDefault, by: 'default' } : null;
}

/** A release as asked for: a version, as the product default or not, to some groups. */
export interface ReleasePlan {
  version: number;
  productDefault: boolean;
  groups: readonly string[];
}

/**
 * The releases after `plan`: the version becomes (or stops being) the default,
 * and is released to exactly its groups.
 */
export function afterRelease(releases: ProductReleases, plan: ReleasePlan): ProductReleases {
  const groups = new Map(releases.groups);
  for (const [g, v] of groups) if (v === plan.version) groups.delete(g);
  for (const g of plan.groups) groups.set(g, plan.version);
  const productDefault = plan.productDefault ? plan.version : releases.productDefault === plan.version ? null : releases.productDefault;
  return { productDefault, groups };
}

/** Devices a release would move, counted by the version they run now (Particle's impact preview). */
export interface Impact {
  total: number;
  byVersion: Map<number | null, number>;
}

export function impact(targets: readonly DeviceTarget[], groupsOf: ReadonlyMap<string, readonly string[]>, before: ProductReleases, plan: ReleasePlan): Impact {
  const after = afterRelease(before, plan);
  const out: Impact = { total: 0, byVersion: new Map() };
  for (const t of targets) {
    const names = groupsOf.get(t.id) ?? [];
    const versions = names.map((g) => after.groups.get(g)).filter((v): v is number => v !== undefined);
    const want = desiredVersion({ ...t, groupVersions: versions }, after);
    // A locked device moves by its lock, not by the release (its rollout leaves it out too).
    if (!want || want.by === 'lock' || want.version !== plan.version || t.firmwareVersion === plan.version) continue;
    out.total++;
    out.byVersion.set(t.firmwareVersion, (out.byVersion.get(t.firmwareVersion) ?? 0) + 1);
  }
  return out;
}
