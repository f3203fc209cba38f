/**
 * volgate as a legacy plugin on a swarm-lab node, the way an operator runs the host daemon on
 * each machine: in the node's mount and UTS namespaces (its FUSE mounts are the ones that node's
 * dockerd sees; its hostname is the node's), in the host netns (it reaches 127.0.0.1 test peers),
 * its socket in the node's own /run/docker/plugins, its own state dir and mount root. The lab
 * stops it after the dockerds (a dockerd whose legacy plugin is gone takes 17-19 s to stop).
 */
import { join } from "node:path";
import type { Swarm, SwarmNode } from "./swarm.ts";
import { startVolgate, type Volgate } from "./volgate.ts";

export async function startVolgateOnNode(
  swarm: Swarm,
  node: SwarmNode,
  plugin: string,
  env: Readonly<Record<string, string>> = {},
): Promise<Volgate> {
  const volgate = await startVolgate({
    socket: join(node.pluginDir, `${plugin}.sock`),
    launcher: node.enter(),
    env,
  });
  swarm.onTeardown(() => volgate.stop());
  return volgate;
}
