# shellcheck shell=bash
# The functions of the bootstrap script: package data of consortium.deploy, read by
# consortium.deploy.bootstrap and copied, without this header (which ends at the first
# empty line), after the generated header of every bootstrap.sh that
# `dtoken network generate compose|kubernetes` writes. That header sets PROFILE,
# CHANNEL, CC_NAME, OSNADMIN_TLS, ORDERER_TLS, DEFINITION, COMMIT_PEERS, INIT_PEERS
# and INIT_CTOR, then calls these functions. Each function looks first and does only
# what is missing, as `dtoken network up` does natively (consortium.joins, .lifecycle).

CRYPTO=${DTOKEN_CRYPTO:-/etc/hyperledger/dtoken/crypto}
CHANNEL_DIR=${DTOKEN_CHANNEL_DIR:-/etc/hyperledger/dtoken/channel}
PACKAGES=${DTOKEN_PACKAGES:-/etc/hyperledger/dtoken/packages}
WORK=${DTOKEN_WORK:-/var/hyperledger/bootstrap}
ATTEMPTS=${DTOKEN_ATTEMPTS:-150}
DELAY=${DTOKEN_DELAY:-2}
export FABRIC_LOGGING_SPEC=${FABRIC_LOGGING_SPEC:-warning}

say() { printf 'bootstrap: %s\n' "$*" >&2; }

# fail WHO OUTPUT: report the last line of a command's output; return 1.
fail() { say "$1: $(tail -n 1 <<<"$2")"; return 1; }

# retry CMD...: run CMD until it succeeds (nodes may still be starting).
retry() {
  local attempt
  for ((attempt = 1; attempt <= ATTEMPTS; attempt++)); do
    if "$@"; then return 0; fi
    sleep "$DELAY"
  done
  say "giving up after $ATTEMPTS attempts: $*"
  return 1
}

# as_admin ORG MSP_ID PEER: the peer CLI acts as ORG's admin against PEER (host:port).
as_admin() {
  export CORE_PEER_LOCALMSPID=$2
  export CORE_PEER_MSPCONFIGPATH=$CRYPTO/$1/users/Admin/msp
  export CORE_PEER_ADDRESS=$3
  export CORE_PEER_TLS_ENABLED=true
  export CORE_PEER_TLS_ROOTCERT_FILE=$CRYPTO/$1/tlsca/tlsca-cert.pem
}

# genesis: the channel's genesis block, made once (configtxgen output is not
# deterministic, and every node must join with the same block).
genesis() {
  [ -s "$WORK/genesis.block" ] && return 0
  local out
  mkdir -p "$WORK"
  out=$(configtxgen -profile "$PROFILE" -channelID "$CHANNEL" -configPath "$CHANNEL_DIR" \
    -outputBlock "$WORK/genesis.block.tmp" 2>&1) || { fail configtxgen "$out"; return 1; }
  mv "$WORK/genesis.block.tmp" "$WORK/genesis.block"
  say "genesis block of $CHANNEL made"
}

# join_orderer ADMIN_ADDRESS: osnadmin channel join, unless the orderer has the channel.
join_orderer() {
  local out
  out=$(osnadmin channel list -o "$1" "${OSNADMIN_TLS[@]}" 2>&1) || { fail "$1" "$out"; return 1; }
  grep -q 'Status: 200' <<<"$out" || { fail "$1" "$out"; return 1; }
  grep -q "\"name\": *\"$CHANNEL\"" <<<"$out" && return 0
  out=$(osnadmin channel join --channelID "$CHANNEL" --config-block "$WORK/genesis.block" \
    -o "$1" "${OSNADMIN_TLS[@]}" 2>&1) || { fail "$1" "$out"; return 1; }
  grep -q 'Status: 201' <<<"$out" || { fail "$1" "$out"; return 1; }
  say "$1 joined $CHANNEL"
}

# join_peer ORG MSP_ID PEER: peer channel join, unless the peer has the channel.
join_peer() {
  as_admin "$1" "$2" "$3"
  local out
  out=$(peer channel list 2>&1) || { fail "$3" "$out"; return 1; }
  grep -qx "$CHANNEL" <<<"$out" && return 0
  out=$(peer channel join -b "$WORK/genesis.block" 2>&1) || { fail "$3" "$out"; return 1; }
  say "$3 joined $CHANNEL"
}

# install_package ORG MSP_ID PEER PACKAGE_FILE PACKAGE_ID
install_package() {
  as_admin "$1" "$2" "$3"
  local out
  out=$(peer lifecycle chaincode queryinstalled --output json 2>&1) \
    || { fail "$3" "$out"; return 1; }
  grep -qF "\"$5\"" <<<"$out" && return 0
  out=$(peer lifecycle chaincode install "$PACKAGES/$4" 2>&1) || { fail "$3" "$out"; return 1; }
  say "$3 installed $5"
}

# committed ORG MSP_ID PEER: is the definition (sequence 1) committed?
committed() {
  as_admin "$1" "$2" "$3"
  peer lifecycle chaincode querycommitted --channelID "$CHANNEL" --name "$CC_NAME" \
    --output json 2>/dev/null | grep -q '"sequence": 1'
}

# approve ORG MSP_ID PEER PACKAGE_ID: approveformyorg, unless ORG has approved.
approve() {
  as_admin "$1" "$2" "$3"
  local out
  out=$(peer lifecycle chaincode checkcommitreadiness "${DEFINITION[@]}" --output json 2>&1) \
    || { fail "$3" "$out"; return 1; }
  grep -q "\"$2\": true" <<<"$out" && return 0
  out=$(peer lifecycle chaincode approveformyorg "${ORDERER_TLS[@]}" "${DEFINITION[@]}" \
    --package-id "$4" --waitForEvent 2>&1) || { fail "$3" "$out"; return 1; }
  say "$2 approved $CC_NAME"
}

# commit_definition ORG MSP_ID PEER
commit_definition() {
  committed "$1" "$2" "$3" && return 0
  local out
  out=$(peer lifecycle chaincode commit "${ORDERER_TLS[@]}" "${DEFINITION[@]}" \
    "${COMMIT_PEERS[@]}" --waitForEvent 2>&1) || { fail "$3" "$out"; return 1; }
  say "$CC_NAME committed on $CHANNEL"
}

# init_chaincode ORG MSP_ID PEER: the registry transaction, once.
init_chaincode() {
  [ -e "$WORK/initialized" ] && return 0
  as_admin "$1" "$2" "$3"
  local out
  if ! out=$(peer chaincode invoke "${ORDERER_TLS[@]}" -C "$CHANNEL" -n "$CC_NAME" \
    -c "$INIT_CTOR" "${INIT_PEERS[@]}" --waitForEvent 2>&1); then
    grep -q ALREADY_INITIALIZED <<<"$out" || { fail "$3" "$out"; return 1; }
  fi
  touch "$WORK/initialized"
  say "$CC_NAME initialized"
}

